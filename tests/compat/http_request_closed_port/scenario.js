// HTTP to a closed local port: a negative result code, never an exception (async and legacy callback forms).
VoxEngine.addEventListener(AppEvents.Started, async function () {
  let r;
  try {
    r = await Net.httpRequestAsync("http://127.0.0.1:1/api/lookup?n=1", { method: "POST", postData: "x=1", timeout: 5 });
    Logger.write("async: code negative: " + (r.code < 0));
  } catch (err) {
    Logger.write("async: threw (wrong) " + err);
  }
  var opts = new Net.HttpRequestOptions();
  opts.method = "GET";
  opts.headers = ["User-Agent: VoxImplant"];
  Net.httpRequest("http://127.0.0.1:1/legacy", function (res) {
    Logger.write("callback: code negative: " + (res.code < 0) + ", same as async: " + (res.code === r.code));
    VoxEngine.terminate();
  }, opts);
});
