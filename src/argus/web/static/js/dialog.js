// One confirmation dialog for every management action: a few fields and the reason, which the
// registry keeps in the audit trail. Resolves to the values, or null when cancelled.
import { $, h, fill } from "./dom.js";

/** fields: [{name, label, type: "select"|"number"|"text", options: [[value, text]], value, min, max}] */
export function confirmAction({ title, text = "", fields = [], ok = "Confirm" }) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = ok;
  const reason = $("#confirm-reason");
  reason.value = "";
  fill($("#confirm-fields"), fields.map((f) => {
    const id = `confirm-field-${f.name}`;
    let input;
    if (f.type === "select") {
      input = h("select", { id, name: f.name }, f.options.map(([value, label]) => h("option", { value, text: label })));
      if (f.value !== undefined) input.value = String(f.value);
    } else {
      input = h("input", { id, name: f.name, type: f.type || "text", value: f.value ?? "", min: f.min, max: f.max, required: f.required });
    }
    return [h("label", { for: id, text: f.label }), input];
  }));
  return new Promise((resolve) => {
    const form = $("#confirm-form");
    const onSubmit = (event) => {
      if (event.submitter?.value === "ok" && !form.reportValidity()) {
        event.preventDefault();
        return;
      }
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", () => {
      form.removeEventListener("submit", onSubmit);
      if (dialog.returnValue !== "ok") {
        resolve(null);
        return;
      }
      const values = { reason: reason.value.trim() };
      for (const f of fields) values[f.name] = $(`#confirm-field-${f.name}`).value;
      resolve(values);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (dialog.querySelector("#confirm-fields input, #confirm-fields select") || reason).focus();
  });
}
