// A form generated from a deployment's parameter JSON schema: one input per
// property, widgets by type, defaults prefilled, required marked; values read
// back as JSON, and errors shown next to their fields.
import { h } from "./core.js";

function resolve(schema, prop) {
  let seen = 0;
  while (prop && prop.$ref && seen++ < 10) {
    const name = prop.$ref.split("/").pop();
    prop = (schema.$defs || schema.definitions || {})[name] || {};
  }
  return prop || {};
}

/** The widget kind of a property: enum, boolean, integer, number, string or json. */
export function kindOf(schema, raw) {
  let prop = resolve(schema, raw);
  let nullable = false;
  const options = prop.anyOf || prop.oneOf;
  if (options) {
    const concrete = options.map((o) => resolve(schema, o)).filter((o) => o.type !== "null");
    nullable = concrete.length < options.length;
    if (concrete.length === 1) prop = concrete[0];
    else return { kind: "json", prop, nullable };
  }
  if (Array.isArray(prop.enum)) return { kind: "enum", prop, nullable };
  if (["boolean", "integer", "number", "string"].includes(prop.type)) return { kind: prop.type, prop, nullable };
  return { kind: "json", prop, nullable };
}

function widget(id, kind, prop, value) {
  const has = value !== undefined;
  if (kind === "enum") {
    return h("select", { id, name: id }, h("option", { value: "" }, "—"),
      prop.enum.map((option, i) => h("option", { value: String(i), selected: has && JSON.stringify(option) === JSON.stringify(value) }, String(option))));
  }
  if (kind === "boolean") {
    return h("select", { id, name: id }, h("option", { value: "" }, "—"),
      h("option", { value: "true", selected: has && value === true }, "true"),
      h("option", { value: "false", selected: has && value === false }, "false"));
  }
  if (kind === "integer" || kind === "number") {
    return h("input", { type: "number", id, name: id, step: kind === "integer" ? "1" : "any", value: has && value !== null ? String(value) : undefined });
  }
  if (kind === "string") return h("input", { type: "text", id, name: id, value: has && value !== null ? String(value) : undefined });
  return h("textarea", { id, name: id, placeholder: "JSON" }, has ? JSON.stringify(value, null, 2) : "");
}

/** Build the form's fields into `form`; returns {read(), showErrors(fields), clear()}. */
export function parameterForm(form, schema, defaults, submitLabel) {
  const fields = [];
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const children = [];
  if (!schema) {
    const input = h("textarea", { id: "param-all", name: "param-all", placeholder: "JSON object" }, JSON.stringify(defaults || {}, null, 2));
    const error = h("div", { class: "field-error", "data-error-for": "*" });
    fields.push({ name: "*", kind: "all", input, error });
    children.push(h("label", { for: "param-all" }, "Parameters"), h("div", {}, input, error));
  }
  Object.keys(props).forEach((name, index) => {
    const { kind, prop } = kindOf(schema, props[name]);
    const id = `param-${index}`;
    const value = defaults && name in defaults ? defaults[name] : prop.default !== undefined ? prop.default : props[name].default;
    const input = widget(id, kind, prop, value);
    input.dataset.param = name;
    const error = h("div", { class: "field-error", "data-error-for": name });
    const help = props[name].description || prop.description;
    fields.push({ name, kind, prop, input, error, required: required.has(name) });
    children.push(
      h("label", { for: id }, name, required.has(name) ? h("span", { class: "req", title: "required" }, "*") : null),
      h("div", {}, input, help ? h("div", { class: "note" }, help) : null, h("div", { class: "note" }, kind === "json" ? "JSON" : kind), error));
  });
  children.push(h("span", {}), h("button", { type: "submit", class: "submit" }, submitLabel));
  form.replaceChildren(...children);

  function clear() {
    for (const f of fields) { f.error.textContent = ""; f.input.classList.remove("invalid"); }
  }
  function mark(name, message) {
    const field = fields.find((f) => f.name === name) || fields.find((f) => f.name === "*");
    if (!field) return false;
    field.error.textContent = field.error.textContent ? `${field.error.textContent}; ${message}` : message;
    field.input.classList.add("invalid");
    return true;
  }
  /** The parameters as JSON values, or throws {fields} for inputs that are not valid JSON. */
  function read() {
    const out = {};
    const problems = [];
    for (const f of fields) {
      const text = f.input.value;
      if (f.kind === "all") {
        try { Object.assign(out, text.trim() ? JSON.parse(text) : {}); } catch (e) { problems.push({ field: "*", message: `not valid JSON: ${e.message}` }); }
        continue;
      }
      if (text === "") continue; // left empty: the deployment's default applies
      if (f.kind === "enum") out[f.name] = f.prop.enum[Number(text)];
      else if (f.kind === "boolean") out[f.name] = text === "true";
      else if (f.kind === "integer" || f.kind === "number") out[f.name] = Number(text);
      else if (f.kind === "string") out[f.name] = text;
      else {
        try { out[f.name] = JSON.parse(text); } catch (e) { problems.push({ field: f.name, message: `not valid JSON: ${e.message}` }); }
      }
    }
    if (problems.length) throw Object.assign(new Error("invalid JSON"), { fields: problems });
    return out;
  }
  /** Show the server's (or read()'s) per-field problems; the leftovers are returned. */
  function showErrors(problems) {
    return problems.filter((p) => !mark(String(p.field).split(/[.[]/)[0], p.message));
  }
  return { read, showErrors, clear };
}
