// Moving between tabs from inside one (Review's retrain opens Train), without importing main.js.
let navigate = () => null;

export function setNavigator(fn) {
  navigate = fn;
}

/** Open tab `name`; resolves to its section module. */
export function go(name) {
  return navigate(name);
}
