// Runs before greeting on the night rule: both share one JS context.
const closedMessage = "we are closed";
Logger.write(closedMessage);
