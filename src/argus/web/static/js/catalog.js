// Questions, models and apps the server has, fetched once per tab and refreshed on demand.
import { api } from "./api.js";
import { h, fill } from "./dom.js";

let questions = null;

export async function loadQuestions(fresh = false) {
  if (!questions || fresh) questions = await api.get("/v1/questions");
  return questions;
}

export function forgetQuestions() {
  questions = null;
}

const GROUPS = [["builtin", "Built-in"], ["user", "Yours"], ["model", "Models"]];

/** Fill a <select> with the questions, grouped: built-in, yours, models. */
export async function fillQuestions(select, fresh = false) {
  const list = await loadQuestions(fresh);
  const chosen = select.value;
  fill(select, GROUPS.map(([kind, label]) => {
    const items = list.filter((q) => (q.kind || (q.builtin ? "builtin" : "user")) === kind);
    return items.length ? h("optgroup", { label }, items.map((q) =>
      h("option", { value: q.name, text: q.available ? q.name : `${q.name} (models missing)`, disabled: !q.available }))) : null;
  }));
  if (chosen && list.some((q) => q.name === chosen)) select.value = chosen;
  return list;
}

export async function modelInfo(name) {
  return api.get(`/v1/models/${encodeURIComponent(name)}`);
}
