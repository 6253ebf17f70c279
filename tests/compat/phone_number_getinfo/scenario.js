// PhoneNumber.getInfo normalises numbers (libphonenumber semantics), using libphonenumber's own example numbers.
var a = PhoneNumber.getInfo("+12015550123");
Logger.write("US: region=" + a.region + " valid=" + a.isValidNumber + " number=" + a.number + " type=" + a.numberType);
var b = PhoneNumber.getInfo("(201) 555-0123", "US");
Logger.write("national US: number=" + b.number + " validForRegion=" + b.isValidNumberForRegion);
var c = PhoneNumber.getInfo("+7 912 345 67 89");
Logger.write("RU mobile: region=" + c.region + " number=" + c.number + " type=" + c.numberType);
var d = PhoneNumber.getInfo("hello");
Logger.write("garbage: error=" + d.error);
VoxEngine.terminate();
