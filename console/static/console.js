// socpipe console: the few behaviours plain HTML lacks. No inline scripts anywhere (the
// Content-Security-Policy forbids them); this file and htmx are all the JavaScript.
"use strict";
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.id === "select-all") {
    for (const row of document.querySelectorAll('#queue input[name="alert"]')) {
      row.checked = box.checked;
    }
  }
  // Filters apply as soon as a checkbox or the grouping changes.
  if (box.closest && box.closest("#filters") && (box.type === "checkbox" || box.tagName === "SELECT")) {
    box.form.requestSubmit();
  }
});
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.id === "bulk-all") {
    const total = document.getElementById("total");
    const count = total ? total.textContent : "all";
    if (!window.confirm(`Apply this change to all ${count} matching alerts?`)) {
      event.preventDefault();
    }
  }
});
