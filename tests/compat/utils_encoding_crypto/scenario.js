// Global helpers used by public scenarios (auth headers, signatures, fuzzy matching).
Logger.write("base64_encode: " + base64_encode("user:secret"));
Logger.write("base64_decode -> bytes: " + JSON.stringify(base64_decode("aGk=")));
Logger.write("bytes2str(base64_decode): " + bytes2str(base64_decode("VGVzdA==")));
Logger.write("str2bytes: " + JSON.stringify(str2bytes("Ab")));
Logger.write("bytes2hex: " + bytes2hex([0, 15, 255]) + " upper: " + bytes2hex([171, 205], true));
Logger.write("hex2bytes: " + JSON.stringify(hex2bytes("0aff")));
Logger.write("md5: " + Crypto.md5("hello"));
Logger.write("sha1: " + Crypto.sha1("hello"));
Logger.write("sha256: " + Crypto.sha256("hello"));
Logger.write("hmac_sha256: " + Crypto.hmac_sha256("key", "The quick brown fox jumps over the lazy dog"));
Logger.write("levenshtein: " + levenshtein_distance("kitten", "sitting"));
Logger.write("uuid ok: " + /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuidgen()));
VoxEngine.terminate();
