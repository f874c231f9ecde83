/* SceneLink console: the Recordings card. Search (incident reference, phone, dates, map area)
   and the list, with Play (playback.js) and, for roles that may, a tick box for export
   (export.js) and the original bundle's download. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var ApiError = window.SceneLink.ApiError;
  var recQuery = '';
  var recSig = '';

  C.recordings = {};          // session id -> recording, as last listed

  function searchParams() {
    var f = C.els.recordingSearch.elements;
    var q = [];
    ['incident_ref', 'phone', 'area', 'near', 'radius_m'].forEach(function (name) {
      var v = f[name].value.trim();
      if (v) q.push(name + '=' + encodeURIComponent(v));
    });
    if (f.from.value) q.push('from=' + encodeURIComponent(f.from.value + 'T00:00:00'));
    if (f.to.value) q.push('to=' + encodeURIComponent(f.to.value + 'T23:59:59'));
    return q.join('&');
  }

  /* background: a timer's refresh of the list the person already has (not audited again). */
  C.loadRecordings = async function (background) {
    var els = C.els;
    if (!C.may('GET /api/recordings')) return;
    var path = '/api/recordings' + (recQuery ? '?' + recQuery : '');
    try {
      var data = await (background === true ? C.refresh(path) : C.api('GET', path));
      els.searchError.textContent = '';
      renderRecordings((data && data.recordings) || []);
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        els.recordingsEmpty.textContent = 'You do not have access to recordings.';
        C.show(els.recordingsEmpty, true);
        C.show(els.recordingSearch, false);
      } else if (e instanceof ApiError) {
        els.searchError.textContent = window.SceneLink.errorText(e);
      }
    }
  };

  C.refreshRecordings = function () {
    recSig = '';
    C.loadRecordings();
  };

  C.onSearchSubmit = function (ev) {
    ev.preventDefault();
    recQuery = searchParams();
    recSig = '';
    C.show(C.els.exportPhone, !!C.els.recordingSearch.elements.phone.value.trim());
    C.loadRecordings();
  };

  C.areaFromMap = function () {
    var els = C.els;
    var m = C.playbackMap || C.liveMap;
    if (!m) { els.searchError.textContent = 'Open a map first (play a recording or watch a session).'; return; }
    var b = m.map.getBounds();
    els.recordingSearch.elements.area.value = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]
      .map(function (x) { return x.toFixed(5); }).join(',');
  };

  C.resetRecordings = function () {
    C.clear(C.els.recordings);
    recSig = '';
    recQuery = '';
    C.resetPlayback();
  };

  function renderRecordings(list) {
    var els = C.els;
    var mk = C.mk;
    var sig = JSON.stringify(list);
    if (sig === recSig) return;
    recSig = sig;
    var ticked = {};
    Array.prototype.forEach.call(els.recordings.querySelectorAll('input.pick:checked'), function (c) { ticked[c.value] = true; });
    C.recordings = {};
    C.clear(els.recordings);
    var mayExport = C.may('POST /api/exports');
    list.forEach(function (r) {
      var id = String(r.session_id);
      C.recordings[id] = r;
      var li = mk('li', 'recording-row');
      li.setAttribute('data-session-id', id);
      var info = mk('div', 'row-main');
      if (mayExport) {
        var pick = mk('input', 'pick');
        pick.type = 'checkbox';
        pick.value = id;
        pick.checked = !!ticked[id];
        pick.setAttribute('aria-label', 'Select for export');
        info.appendChild(pick);
      }
      info.appendChild(mk('span', 'ref', r.incident_ref || '(no ref)'));
      info.appendChild(mk('span', 'muted', C.fmtDate(r.started_at)));
      var dur = C.fmtDuration(r.duration_s);
      if (dur) info.appendChild(mk('span', 'muted', dur));
      if (r.mode && r.mode !== 'video' && r.mode !== 'location') info.appendChild(mk('span', 'muted invite', r.mode.replace(/_/g, ' ')));
      if (!(r.parts || []).length) info.appendChild(mk('span', 'muted', 'location only'));
      if (r.status !== 'closed') info.appendChild(mk('span', 'muted', 'still recording'));
      var btn = mk('button', 'btn btn-small play', 'Play');
      btn.type = 'button';
      btn.addEventListener('click', function () { C.playRecording(id); });
      li.appendChild(info);
      li.appendChild(btn);
      var ret = mk('button', 'btn btn-small btn-ghost retention', 'Retention');
      ret.type = 'button';
      ret.setAttribute('data-needs', 'GET /api/retention/queue');
      ret.addEventListener('click', function () { C.openRetention(id); });
      li.appendChild(ret);
      if (C.may('GET /api/recordings/{session_id}/bundle') && r.bundle_url) {
        var dl = mk('a', 'btn btn-small btn-ghost download', 'Download original');
        dl.href = r.bundle_url;
        dl.setAttribute('download', '');
        li.appendChild(dl);
      }
      C.applyGates(li);
      els.recordings.appendChild(li);
    });
    els.recordingsEmpty.textContent = recQuery ? 'No recordings match.' : 'No recordings yet.';
    C.show(els.recordingsEmpty, list.length === 0);
    C.show(els.exportForm, !!mayExport && list.length > 0);
  }
})();
