"""(being written)"""

from appliance.web.api import Method

METHODS: list[Method] = []
