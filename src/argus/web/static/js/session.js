// What this tab's token may do on this server (GET /v1/whoami), and news when that changes.
import { api } from "./api.js";

export const session = { token: "none", ask: true, manage: true, tokens_required: false, version: "" };
const listeners = new Set();

export function onSession(listener) {
  listeners.add(listener);
}

export async function refreshSession() {
  try {
    Object.assign(session, await api.get("/v1/whoami"));
  } catch (error) {
    Object.assign(session, { token: "unknown", ask: false, manage: false, error });
  }
  for (const listener of listeners) listener(session);
  return session;
}
