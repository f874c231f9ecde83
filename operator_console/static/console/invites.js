/* SceneLink console: the invite types (signalling/calls/invites.py). The send form's fields for
   a bail or court-order check (the required place and a tolerance) and a screening appointment
   (its time and window); on the live panel, a bail check's verdict against the required place
   (distance, the fix's accuracy and age) and, for a missing person, the last fix's accuracy and
   age in large type. The server judges each fix; this only shows its last judgement. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var ageTimer = null;

  var VERDICTS = {
    within: 'Within',
    outside: 'Outside',
    uncertain: 'Uncertain'
  };

  // What the caller's page shares for a session: "video" or "location".
  C.media = function (s) {
    if (s && s.invite && s.invite.media) return s.invite.media;
    return s && s.mode === 'location' ? 'location' : 'video';
  };

  // "Bail or court-order check", "Video and location"...
  C.inviteLabel = function (s) {
    if (s && s.invite && s.invite.label) return s.invite.label;
    return C.media(s) === 'location' ? 'Location only' : 'Video';
  };

  function $(id) { return document.getElementById(id); }

  function showFields(mode) {
    C.show($('send-bail'), mode === 'bail_check');
    C.show($('send-screening'), mode === 'screening');
  }

  /* The request's extra fields for the chosen invite type; {field: message} for what is
     missing (the server checks everything again and names the field too). */
  C.inviteFields = function (form, mode) {
    var body = {};
    var errors = {};
    if (mode === 'bail_check') {
      var place = form.elements.place.value.trim();
      var tolerance = form.elements.tolerance_m.value.trim();
      if (!place) errors.place = 'Enter where the person must be: an address, a grid reference or "lat, lon".';
      else body.place = place;
      if (!tolerance || !(Number(tolerance) > 0)) errors.tolerance_m = 'Enter the tolerance in metres.';
      else body.tolerance_m = Number(tolerance);
    } else if (mode === 'screening') {
      var at = form.elements.appointment_at.value;
      var when = at ? new Date(at) : null;  // the console's own time zone
      if (!when || isNaN(when.getTime())) errors.appointment_at = 'Enter the appointment\'s date and time.';
      else body.appointment_at = when.toISOString();
      body.window_minutes = Number(form.elements.window_minutes.value) || 60;
    }
    return { body: body, errors: errors };
  };

  // After a link is sent: the fields as the page first had them (the tolerance's 50 m).
  C.clearInviteFields = function (form) {
    ['place', 'tolerance_m', 'appointment_at', 'window_minutes'].forEach(function (name) {
      var field = form.elements[name];
      if (field) field.value = field.defaultValue;
    });
  };

  function line(cls, text) { return C.mk('p', cls, text); }

  function fixAgeText(isoTime) {
    var t = C.parseTime(isoTime);
    return isFinite(t) ? C.ago(Date.now() - t) : '';
  }

  function renderBail(box, s) {
    var inv = s.invite;
    var place = inv.required_place || {};
    var check = inv.bail_check;
    var where = place.address || place.grid_ref || place.given || '';
    box.appendChild(line('invite-place', 'Must be at ' + where + ' (within ' + Math.round(place.tolerance_m) + ' m)'));
    var verdict = check ? check.verdict : 'none';
    var big = line('bail-verdict', check ? VERDICTS[verdict] || verdict : 'Waiting for a fix…');
    big.id = 'bail-verdict';
    big.setAttribute('data-verdict', verdict);
    box.appendChild(big);
    if (!check) return;
    var detail = line('bail-detail', Math.round(check.distance_m) + ' m from the place, fix ±' +
      Math.round(check.accuracy_m) + ' m, ');
    var age = C.mk('span', 'fix-age', fixAgeText(check.fix.received_at));
    age.setAttribute('data-received-at', check.fix.received_at);
    detail.appendChild(age);
    box.appendChild(detail);
    if (verdict === 'uncertain') {
      box.appendChild(line('muted', 'The fix\'s accuracy circle crosses the boundary: wait for a better fix.'));
    }
  }

  function renderTracking(box, s) {
    var fix = (C.live && C.live.lastFix) || s.last_fix;
    box.appendChild(line('invite-note', 'Tracking until you end the session.'));
    if (!C.validFix(fix)) { box.appendChild(line('tracking-fix', 'No fix yet')); return; }
    var big = line('tracking-fix', '±' + Math.round(fix.accuracy) + ' m, ');
    big.id = 'tracking-fix';
    var age = C.mk('span', 'fix-age', fixAgeText(fix.received_at));
    age.setAttribute('data-received-at', fix.received_at);
    big.appendChild(age);
    box.appendChild(big);
  }

  function renderAppointment(box, s) {
    var a = s.invite.appointment;
    if (!a) return;
    box.appendChild(line('invite-note', 'Link opens ' + C.fmtDate(a.starts_at) + ', until ' + C.fmtDate(a.ends_at) + '.'));
  }

  function tickAges() {
    var box = $('live-invite');
    if (!box || box.hasAttribute('hidden')) { clearInterval(ageTimer); ageTimer = null; return; }
    Array.prototype.forEach.call(box.querySelectorAll('[data-received-at]'), function (el) {
      el.textContent = fixAgeText(el.getAttribute('data-received-at'));
    });
  }

  /* The live panel's invite box, from the session as the server last sent it. */
  C.renderInvite = function (s) {
    var box = $('live-invite');
    if (!box) return;
    C.clear(box);
    var inv = s && s.invite;
    var special = inv && s.mode !== 'video' && s.mode !== 'location';
    C.show(box, !!special);
    if (!special) return;
    box.setAttribute('data-invite', s.mode);
    box.appendChild(C.mk('h3', 'invite-label', inv.label));
    if (inv.required_place) renderBail(box, s);
    if (inv.tracking === 'until_stopped') renderTracking(box, s);
    renderAppointment(box, s);
    if (!ageTimer) ageTimer = setInterval(tickAges, 1000);
  };

  function init() {
    var select = $('send-mode');
    if (!select) return;
    select.addEventListener('change', function () { showFields(select.value); });
    showFields(select.value);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
