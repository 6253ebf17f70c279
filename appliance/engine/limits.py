"""VoxEngine's documented session limits (reference section 4.8), one named constant each.

The JS prelude receives these values from here, so each limit is defined once.
"""

CALLBACK_CPU_SECONDS = 1.0  # JS CPU time per callback (event handler, timer, top-level code)
HEAP_BYTES = 16 * 1024 * 1024  # JS heap of one session
MAX_TIMERS = 100  # active setTimeout/setInterval timers per session
MIN_INTERVAL_MS = 100  # setInterval periods below this are raised to it
HTTP_ACTIVE = 3  # Net.httpRequest requests running at once per session
HTTP_TOTAL = 35  # running + queued; the next one throws
HTTP_MAX_RESPONSE_BYTES = 2 * 1024 * 1024  # larger responses give code -9
HTTP_CONNECT_TIMEOUT_S = 6.0  # can only be lowered by a script
HTTP_TOTAL_TIMEOUT_S = 90.0  # can only be lowered by a script
HTTP_MAX_REDIRECTS = 10
SMTP_ACTIVE = 2
SMTP_TOTAL = 10
LOG_MESSAGE_CHARS = 15_000  # Logger.write messages are cut here
CUSTOM_DATA_CHARS = 2_000  # VoxEngine.customData; the reference's 2000-character reading
SCENARIO_CHARS = 256 * 1024  # one scenario's source
IDLE_SESSION_SECONDS = 60.0  # a session without calls ends after this
TERMINATION_WAIT_SECONDS = 90.0  # pending HTTP/SMTP requests are awaited this long at termination
HTTP_REQUEST_REPLY_SECONDS = 30.0  # an AppEvents.HttpRequest handler must answer within this
NO_ANSWER_SECONDS = 60.0  # an incoming call not answered, or an outgoing one not answered, ends with 408
CALL_ATTEMPTS = 50  # calls per session, incoming and outgoing, successful or not; then Failed 403
PROGRESSING_CALLS = 10  # outgoing calls ringing at once; then Failed 403
PLAYERS_PER_SESSION = 10  # media players alive at once (say/startPlayback each use one)

# Shared with JS (names as the prelude reads them).
FOR_JS = {
    "maxTimers": MAX_TIMERS,
    "minIntervalMs": MIN_INTERVAL_MS,
    "httpTotal": HTTP_TOTAL,
    "httpTimeoutS": HTTP_TOTAL_TIMEOUT_S,
    "httpConnectTimeoutS": HTTP_CONNECT_TIMEOUT_S,
    "smtpTotal": SMTP_TOTAL,
    "logMessageChars": LOG_MESSAGE_CHARS,
    "customDataChars": CUSTOM_DATA_CHARS,
    "playersPerSession": PLAYERS_PER_SESSION,
    "storageKeyChars": 200,
    "storageValueChars": 2000,
    "storageTtlMax": 7_776_000,
}
