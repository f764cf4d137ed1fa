/** Injection tokens of the director's services (values handed to the HTTP module). */
export const ACCOUNTS = Symbol('Accounts');
export const APPLICATIONS = Symbol('Applications');
export const PLATFORM = Symbol('Platform');
