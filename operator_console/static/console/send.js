/* SceneLink console: the "Send a link" form. Field errors go beside their field. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var ApiError = window.SceneLink.ApiError;

  function clearSendErrors() {
    var f = C.els.sendForm;
    Array.prototype.forEach.call(f.querySelectorAll('[data-error-for]'), function (e) { e.textContent = ''; });
    Array.prototype.forEach.call(f.querySelectorAll('[aria-invalid]'), function (e) { e.removeAttribute('aria-invalid'); });
  }

  function fieldError(name, msg) {
    var els = C.els;
    var target = els.sendForm.querySelector('[data-error-for="' + name + '"]') || els.sendError;
    target.textContent = (target === els.sendError && name !== 'form' ? name + ': ' : '') + msg;
    var input = els.sendForm.elements[name];
    if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
  }

  C.onSendSubmit = async function (ev) {
    ev.preventDefault();
    var els = C.els;
    var f = els.sendForm;
    var btn = f.querySelector('button[type=submit]');
    clearSendErrors();
    C.show(els.sendSuccess, false);
    var phone = f.elements.phone.value.trim();
    var ref = f.elements.incident_ref.value.trim();
    var mode = f.elements.mode.value || 'video';
    var invite = C.inviteFields(f, mode);
    var bad = false;
    if (!phone) { fieldError('phone', 'Enter the caller\'s mobile number.'); bad = true; }
    if (!ref) { fieldError('incident_ref', 'Enter the incident reference.'); bad = true; }
    Object.keys(invite.errors).forEach(function (k) { fieldError(k, invite.errors[k]); bad = true; });
    if (bad) return;
    btn.disabled = true;
    try {
      var s = await C.api('POST', '/api/sessions', Object.assign({ phone: phone, incident_ref: ref, mode: mode, language: C.chosenLanguage(f) }, invite.body));
      var msg = 'Link sent to ' + ((s && s.phone_masked) || 'the caller') + ' for ' + ((s && s.incident_ref) || ref) + '.';
      if (s && s.sms && s.sms.status === 'failed') {
        msg = 'Session created, but the SMS failed' + (s.sms.error ? ': ' + s.sms.error : '') + '.';
        els.sendSuccess.className = 'success warn';
      } else {
        els.sendSuccess.className = 'success';
      }
      els.sendSuccess.textContent = msg;
      C.show(els.sendSuccess, true);
      f.elements.phone.value = '';
      f.elements.incident_ref.value = '';
      C.clearInviteFields(f);
      C.pollOnce();
    } catch (e) {
      var fields = window.SceneLink.fieldErrors(e);
      if (Object.keys(fields).length) {
        Object.keys(fields).forEach(function (k) { fieldError(k, String(fields[k])); });
      } else if (e instanceof ApiError) {
        fieldError('form', window.SceneLink.errorText(e));
      } else {
        fieldError('form', 'Cannot reach the server. The link was not sent.');
      }
    } finally {
      btn.disabled = false;
    }
  };
})();
