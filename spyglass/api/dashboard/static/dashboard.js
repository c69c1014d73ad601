// Spyglass dashboard: the upload progress bar, and confirmations. Everything else works without it.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function humanBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

// The file goes from the browser straight into the image API's upload, as one streamed PUT.
async function upload(form, file) {
  const created = await fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), redirect: "follow" });
  if (!created.ok) { document.body.innerHTML = await created.text(); return; }
  const imageUrl = new URL(created.url).pathname;
  const box = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  box.hidden = false;
  const started = performance.now();
  const xhr = new XMLHttpRequest();
  xhr.open("PUT", imageUrl + "/file");
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.setRequestHeader("X-CSRF-Token", csrfToken());
  xhr.upload.onprogress = (event) => {
    if (!event.lengthComputable) return;
    const percent = Math.floor((event.loaded / event.total) * 100);
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? event.loaded / seconds : 0;
    bar.value = percent;
    document.getElementById("upload-percent").textContent = percent + " %";
    document.getElementById("upload-speed").textContent = humanBytes(rate) + "/s";
    const left = rate > 0 ? Math.ceil((event.total - event.loaded) / rate) : 0;
    document.getElementById("upload-left").textContent = left + " s left";
  };
  xhr.onload = () => {
    if (xhr.status >= 200 && xhr.status < 300) {
      bar.value = 100;
      document.getElementById("upload-percent").textContent = "100 %";
      window.location.assign(imageUrl + "?notice=" + encodeURIComponent("Uploaded."));
    } else {
      document.getElementById("upload-left").textContent = "failed: " + xhr.status + " " + xhr.responseText.slice(0, 300);
    }
  };
  xhr.send(file);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      const input = document.getElementById("u-file");
      if (!input.files.length) return; // no file: the form only creates the image
      event.preventDefault();
      upload(form, input.files[0]);
    });
  }
  for (const confirmed of document.querySelectorAll("form[data-confirm]")) {
    confirmed.addEventListener("submit", (event) => {
      if (!window.confirm(confirmed.dataset.confirm)) event.preventDefault();
    });
  }
});
