"use strict";
// A file that opts into strict mode: assigning an undeclared name is a ReferenceError there.
try {
  undeclaredInStrict = 1;
  Logger.write("strict file: no error (wrong)");
} catch (err) {
  Logger.write("strict file: " + err.name);
}
