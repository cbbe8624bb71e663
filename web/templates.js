// List this extension's templates with the ones that need no downloads first.
// ComfyUI's server lists an extension's templates in the order its file system gives
// (glob), which differs from machine to machine; the page shows them in that order.
// This wraps the page's fetch of that list and orders only this extension's entry:
// the "Try it" templates (they run on the bundled demo model) first,
// then the others by name. Nothing else in the list changes.
import { api } from "../../scripts/api.js";

const EXTENSION_FOLDER = new URL(import.meta.url).pathname.split("/")[2];   // /extensions/<folder>/templates.js

function order(names) {
  const demo = (name) => (name.startsWith("Try it - ") ? 0 : 1);
  return [...names].sort((a, b) => demo(a) - demo(b) || a.localeCompare(b));
}

const fetchTemplates = api.getWorkflowTemplates.bind(api);
api.getWorkflowTemplates = async () => {
  const templates = await fetchTemplates();
  if (Array.isArray(templates?.[EXTENSION_FOLDER])) {
    templates[EXTENSION_FOLDER] = order(templates[EXTENSION_FOLDER]);
  }
  return templates;
};
