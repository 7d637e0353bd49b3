// callmeter dashboard: the pages work without this; it only adds conveniences.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The request log's filters are folded for phones; a wide screen has room to show them.
  if (window.matchMedia("(min-width: 641px)").matches) {
    for (const box of document.querySelectorAll("details.filter-box")) box.open = true;
  }
  // "Copy" next to a share link: puts the link on the clipboard and says so.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = document.getElementById(button.dataset.copy + "-status");
      try {
        await navigator.clipboard.writeText(field.value);
        if (status) status.textContent = "Copied.";
      } catch (_) {
        field.select();
        if (status) status.textContent = "Press Ctrl+C to copy.";
      }
    });
  }
});
