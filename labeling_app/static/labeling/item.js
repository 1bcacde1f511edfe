// One item: record (MediaRecorder) or choose a clip, upload it with a progress bar, then poll
// the status of both responses until they are ready. No framework, no network but our own.
(function () {
  "use strict";
  const root = document.getElementById("item");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxSeconds = parseFloat(root.dataset.maxSeconds);
  const uploadMessage = $("upload-message");
  let recorder = null, chunks = [], recording = null, stream = null, timer = null, started = 0;

  function pickMimeType() {
    const wanted = ["video/webm;codecs=vp8,opus", "video/webm", "video/mp4"];
    if (!window.MediaRecorder) return null;
    return wanted.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  }

  async function startRecording() {
    uploadMessage.textContent = "";
    const mimeType = pickMimeType();
    if (mimeType === null || !navigator.mediaDevices) {
      uploadMessage.textContent = "This browser cannot record here; upload a clip instead.";
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (error) {
      uploadMessage.textContent = "The camera or microphone could not be opened (" + error.name +
        "). Allow access in the browser, or upload a clip instead.";
      return;
    }
    const preview = $("preview");
    preview.srcObject = stream; preview.muted = true; preview.controls = false; preview.play();
    chunks = [];
    recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
    recorder.onstop = () => {
      recording = new Blob(chunks, { type: recorder.mimeType || "video/webm" });
      stream.getTracks().forEach((track) => track.stop());
      preview.srcObject = null; preview.src = URL.createObjectURL(recording);
      preview.muted = false; preview.controls = true;
      $("send-recording").disabled = false;
      $("record").disabled = false;
    };
    recorder.start(1000);
    started = Date.now();
    $("record").disabled = true; $("stop").disabled = false; $("send-recording").disabled = true;
    timer = setInterval(() => {
      const seconds = (Date.now() - started) / 1000;
      $("record-timer").textContent = seconds.toFixed(0) + " s / " + maxSeconds.toFixed(0) + " s";
      if (seconds >= maxSeconds - 0.5) stopRecording();
    }, 250);
  }

  function stopRecording() {
    clearInterval(timer);
    $("stop").disabled = true;
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  function upload(blob, filename, source) {
    // The server checks the size too; this only spares a slow link sending a file it refuses.
    if (blob.size > parseInt(root.dataset.maxBytes, 10)) {
      uploadMessage.textContent = "The file is larger than the limit of " + root.dataset.maxSize +
        ". Record a shorter turn or upload a smaller clip.";
      return;
    }
    const form = new FormData();
    form.append("media", blob, filename);
    form.append("source", source);
    const request = new XMLHttpRequest();
    const progress = $("upload-progress");
    progress.hidden = false; progress.value = 0;
    uploadMessage.textContent = "";
    setBusy(true);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) progress.value = (100 * event.loaded) / event.total;
    };
    request.onload = () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (error) { body = {}; }
      if (request.status === 201) {
        progress.value = 100;
        $("record-section").hidden = true;
        $("waiting-section").hidden = false;
        poll(body.status_url);
      } else {
        setBusy(false);
        uploadMessage.textContent = body.error || ("The upload failed (HTTP " + request.status + "). Try again.");
      }
    };
    request.onerror = () => {
      setBusy(false);
      uploadMessage.textContent = "The upload was interrupted (network). Nothing was saved; try again.";
    };
    request.open("POST", root.dataset.uploadUrl);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.send(form);
  }

  function setBusy(busy) {
    ["record", "send-recording", "upload-file", "file"].forEach((id) => { $(id).disabled = busy; });
    if (!busy) {
      $("send-recording").disabled = !recording;
      $("upload-file").disabled = !$("file").files.length;
    }
  }

  // One progress for the pair: the server never says which side is further along (that
  // would tell the variants apart); it names a side only when that side failed.
  function showPair(state) {
    $("status-pair").textContent = state.message;
    $("progress-pair").value = state.progress;
    if (state.failed) {
      $("side-errors").hidden = false;
      ["left", "right"].forEach((side) => {
        $("status-" + side).textContent = state[side].message;
        $("status-" + side).dataset.status = state[side].status;
      });
    }
  }

  function poll(url) {
    let failures = 0;
    const tick = async () => {
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        const body = await response.json();
        if (!response.ok) { $("waiting-message").textContent = body.error; return; }
        failures = 0;
        showPair(body);
        if (body.ready) { window.location.assign(body.compare_url); return; }
        if (body.failed) {
          $("waiting-message").textContent = "A response could not be produced. Give this item back to take the next one.";
          return;
        }
      } catch (error) {
        failures += 1;
        $("waiting-message").textContent = failures > 3 ? "The server cannot be reached; still trying…" : "";
      }
      setTimeout(tick, 1500);
    };
    tick();
  }

  $("record").addEventListener("click", startRecording);
  $("stop").addEventListener("click", stopRecording);
  $("send-recording").addEventListener("click", () => {
    const extension = recording.type.indexOf("mp4") >= 0 ? "mp4" : "webm";
    upload(recording, "recording." + extension, "recorded");
  });
  $("file").addEventListener("change", () => { $("upload-file").disabled = !$("file").files.length; });
  $("upload-file").addEventListener("click", () => {
    const file = $("file").files[0];
    if (file) upload(file, file.name, "uploaded");
  });
  // A file may already be chosen (a quick user, or the browser restoring the form on Back).
  $("upload-file").disabled = !$("file").files.length;
  if (root.dataset.statusUrl) poll(root.dataset.statusUrl);
})();
