/* SceneLink console: export for disclosure. The ticked recordings, or everything for the phone
   number searched (a right-of-access request), packaged by the server; progress is followed
   until the package can be downloaded. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var errorText = window.SceneLink.errorText;
  var exportTimer = null;

  function exportBody(extra) {
    var f = C.els.exportForm.elements;
    return Object.assign({ recipient: f.recipient.value.trim(), purpose: f.purpose.value.trim() }, extra);
  }

  async function startExport(body) {
    var els = C.els;
    els.exportError.textContent = '';
    if (!body.recipient || !body.purpose) { els.exportError.textContent = 'Say who receives the package and why.'; return; }
    C.show(els.exportDownload, false);
    try {
      var job = await C.api('POST', '/api/exports', body);
      C.show(els.exportStatus, true);
      followExport(job);
    } catch (e) {
      els.exportError.textContent = errorText(e);
    }
  }

  function followExport(job) {
    var els = C.els;
    if (exportTimer) clearTimeout(exportTimer);
    els.exportProgress.max = Math.max(1, job.total_bytes || 1);
    els.exportProgress.value = job.done_bytes || 0;
    els.exportStatus.setAttribute('data-state', job.state);
    if (job.state === 'running') {
      els.exportState.textContent = 'Exporting ' + job.session_ids.length + ' recording(s)… ' +
        Math.round(100 * (job.done_bytes || 0) / Math.max(1, job.total_bytes || 1)) + '%';
      exportTimer = setTimeout(async function () {
        try { followExport(await C.api('GET', '/api/exports/' + job.export_id)); }
        catch (e) { els.exportError.textContent = 'Lost track of the export: ' + errorText(e); }
      }, 500);
    } else if (job.state === 'done') {
      els.exportState.textContent = 'Ready: ' + job.session_ids.length + ' recording(s) for ' + job.recipient + '.';
      els.exportDownload.href = job.download_url;
      C.show(els.exportDownload, true);
    } else {
      els.exportState.textContent = 'Export failed: ' + (job.error || 'unknown error');
    }
  }

  C.onExportSubmit = function (ev) {
    ev.preventDefault();
    var ids = Array.prototype.map.call(C.els.recordings.querySelectorAll('input.pick:checked'), function (c) { return c.value; });
    if (!ids.length) { C.els.exportError.textContent = 'Tick the recordings to export.'; return; }
    // Redacted copies and clips made of these recordings (redact.js) go with them.
    startExport(exportBody({ session_ids: ids, derivative_ids: C.derivativesFor ? C.derivativesFor(ids) : [] }));
  };

  C.onExportPhone = function () {
    var phone = C.els.recordingSearch.elements.phone.value.trim();
    if (!phone) { C.els.exportError.textContent = 'Search by phone number first.'; return; }
    startExport(exportBody({ phone: phone }));
  };
})();
