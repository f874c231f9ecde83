/* SceneLink console: the sessions list. One row per session, live ones first, newest first;
   each says its state, last fix, viewers, a failed SMS (with "Retry SMS") and a failed
   recording, and offers Watch (View once ended) and End. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var errorText = window.SceneLink.errorText;

  function sortKey(s) {
    var t = C.parseTime(s.created_at);
    return isFinite(t) ? t : 0;
  }

  C.renderSessions = function (list) {
    var els = C.els;
    var rows = C.rows;
    var seen = {};
    list = list.filter(function (s) { return s && s.id !== undefined && s.id !== null; });
    list.sort(function (a, b) {
      var ae = a.state === 'ended' ? 1 : 0;
      var be = b.state === 'ended' ? 1 : 0;
      if (ae !== be) return ae - be;
      return sortKey(b) - sortKey(a);
    });
    list.forEach(function (s) {
      var id = String(s.id);
      seen[id] = true;
      C.sessions[id] = s;
      if (!rows[id]) rows[id] = buildRow(id);
      C.updateRow(id);
      if (C.live && C.live.id === id) C.onLiveSession(s);
    });
    Object.keys(rows).forEach(function (id) {
      if (!seen[id]) {
        if (rows[id].li.parentNode) rows[id].li.parentNode.removeChild(rows[id].li);
        delete rows[id];
        delete C.sessions[id];
      }
    });
    // Reorder only if needed (moving nodes while a user clicks is annoying).
    var current = Array.prototype.map.call(els.sessions.children, function (li) { return li.getAttribute('data-session-id'); });
    var wanted = list.map(function (s) { return String(s.id); });
    if (current.join('\n') !== wanted.join('\n')) {
      wanted.forEach(function (id) { els.sessions.appendChild(rows[id].li); });
    }
    C.show(els.sessionsEmpty, list.length === 0);
  };

  function buildRow(id) {
    var mk = C.mk;
    var li = mk('li', 'session-row');
    li.setAttribute('data-session-id', id);
    var main = mk('div', 'row-main');
    var ref = mk('span', 'ref');
    var phone = mk('span', 'phone');
    var mode = mk('span', 'mode');
    main.appendChild(ref); main.appendChild(phone); main.appendChild(mode);
    var caller = mk('div', 'row-caller');
    var callerState = mk('span', 'caller-state');
    callerState.setAttribute('role', 'status');
    var callerDevice = mk('span', 'caller-device muted');
    caller.appendChild(callerState); caller.appendChild(callerDevice);
    var meta = mk('div', 'row-meta');
    var state = mk('span', 'state state-badge');
    var fix = mk('span', 'fix-age');
    var viewers = mk('span', 'viewers');
    var sms = mk('span', 'sms');
    var rec = mk('span', 'recording-failed');
    rec.setAttribute('role', 'alert');
    meta.appendChild(state); meta.appendChild(fix); meta.appendChild(viewers); meta.appendChild(sms);
    meta.appendChild(rec);
    var actions = mk('div', 'row-actions');
    var watch = mk('button', 'btn btn-small watch', 'Watch');
    watch.type = 'button';
    var end = mk('button', 'btn btn-small btn-danger end', 'End');
    end.type = 'button';
    var retry = mk('button', 'btn btn-small retry-sms', 'Retry SMS');
    retry.type = 'button';
    retry.hidden = true;
    end.setAttribute('data-needs', 'POST /api/sessions/{session_id}/end');
    retry.setAttribute('data-needs', 'POST /api/sessions/{session_id}/resend');
    actions.appendChild(retry); actions.appendChild(watch); actions.appendChild(end);
    C.applyGates(actions);
    li.appendChild(main); li.appendChild(caller); li.appendChild(meta); li.appendChild(actions);
    watch.addEventListener('click', function () { C.watchSession(id); });
    end.addEventListener('click', function () { C.endSession(id, end); });
    retry.addEventListener('click', function () { resendLink(id, retry); });
    return { li: li, ref: ref, phone: phone, mode: mode, state: state, fix: fix, viewers: viewers, sms: sms, rec: rec, callerState: callerState, callerDevice: callerDevice, retry: retry, watch: watch, end: end };
  }

  C.updateRow = function (id) {
    var r = C.rows[id];
    var s = C.sessions[id];
    if (!r || !s) return;
    r.li.setAttribute('data-state', s.state || '');
    r.li.classList.toggle('watching', !!(C.live && C.live.id === id));
    r.ref.textContent = s.incident_ref || '(no ref)';
    r.phone.textContent = s.phone_masked || '';
    r.mode.textContent = C.inviteLabel(s);
    r.state.textContent = C.stateLabel(s.state);
    r.state.setAttribute('data-state', s.state || '');
    var vc = C.viewersCount(s.viewers);
    r.viewers.textContent = vc + (vc === 1 ? ' viewer' : ' viewers');
    if (s.sms && s.sms.status === 'failed') {
      r.sms.textContent = 'SMS failed' + (s.sms.error ? ': ' + s.sms.error : '');
      r.sms.className = 'sms sms-failed';
    } else {
      r.sms.textContent = '';
      r.sms.className = 'sms';
    }
    r.rec.textContent = C.recordingProblem(s);
    C.show(r.rec, !!r.rec.textContent);
    r.callerState.textContent = C.callerLine(s);
    r.callerState.setAttribute('data-ok', C.callerOk(s) ? 'true' : 'false');
    r.callerDevice.textContent = [C.callerDevice(s), C.languageLine(s)].filter(Boolean).join(' · ');
    C.show(r.callerDevice, !!r.callerDevice.textContent);
    var isEnded = s.state === 'ended';
    // A fresh link only while the caller has not opened theirs (the server refuses after).
    // A tapped link that had expired: "use Resend" is this button.
    C.show(r.retry, (!!(s.sms && s.sms.status === 'failed') || C.linkRefused(s)) && s.state === 'link_sent');
    C.show(r.end, !isEnded);
    r.watch.textContent = isEnded ? 'View' : 'Watch';
    C.updateRowAge(id);
  };

  C.updateRowAge = function (id) {
    var r = C.rows[id];
    var s = C.sessions[id];
    if (!r || !s) return;
    var f = s.last_fix;
    var count = C.isNum(s.fix_count) ? s.fix_count : 0;
    if (C.validFix(f)) {
      var t = C.parseTime(f.received_at || f.device_time);
      r.fix.textContent = 'Last fix ' + (isFinite(t) ? C.ago(Date.now() - t) : '') +
        (C.isNum(f.accuracy) ? ' (±' + Math.round(f.accuracy) + ' m)' : '') + ' · ' + count + ' fixes';
    } else {
      r.fix.textContent = 'No location yet';
    }
  };

  async function resendLink(id, btn) {
    btn.disabled = true;
    try {
      var s = await C.api('POST', '/api/sessions/' + encodeURIComponent(id) + '/resend', {});
      if (s && s.id !== undefined) {
        C.sessions[String(s.id)] = s;
        C.updateRow(String(s.id));
      }
    } catch (e) {
      C.globalError('Could not send a new link: ' + errorText(e));
    } finally {
      btn.disabled = false;
    }
  }

  C.endSession = async function (id, btn) {
    if (btn) btn.disabled = true;
    try {
      var s = await C.api('POST', '/api/sessions/' + encodeURIComponent(id) + '/end', {});
      if (s && s.id !== undefined) {
        C.sessions[String(s.id)] = s;
        C.updateRow(String(s.id));
        if (C.live && C.live.id === String(s.id)) C.onLiveSession(s);
      }
      C.pollOnce();
    } catch (e) {
      C.globalError('Could not end the session: ' + errorText(e));
    } finally {
      if (btn) btn.disabled = false;
    }
  };
})();
