// The environment the Rust tests pass to these scripts.

// The variable `name`; throws when it is not set.
export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

// How long one step of a script may wait, in ms.
export const TIMEOUT = 15_000;
