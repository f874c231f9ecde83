/* SceneLink console: share the watched session with officers (by account or by an officer link),
   list its shares, withdraw them. Follows live.js through #live's data-session-id.
   Plain ES2017, no build step, CSP-safe. */
(function () {
  'use strict';

  var POLL_MS = 5000;
  var api = window.SceneLink.console.api;  // a lapsed sign-in takes the whole page back to sign-in
  var errorText = window.SceneLink.errorText;
  var $ = function (id) { return document.getElementById(id); };
  var els = {};
  var sessionId = null;
  var pollTimer = null;
  var listSig = '';

  function show(el, on) { if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', ''); }

  function sharesPath(id) { return '/api/sessions/' + encodeURIComponent(id) + '/shares'; }

  function fmtTime(iso) {
    var t = Date.parse(iso);
    return isFinite(t) ? new Date(t).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }) : '';
  }

  function render(shares) {
    var active = shares.filter(function (s) { return s.active; });
    var sig = JSON.stringify(active);
    if (sig === listSig) return;
    listSig = sig;
    while (els.list.firstChild) els.list.removeChild(els.list.firstChild);
    active.forEach(function (s) {
      var li = document.createElement('li');
      li.className = 'share-row';
      li.setAttribute('data-share-id', s.id);
      li.setAttribute('data-kind', s.kind);
      var who = document.createElement('span');
      who.className = 'who';
      who.textContent = (s.kind === 'link' ? 'Officer link: ' : 'Officer: ') + s.recipient;
      var when = document.createElement('span');
      when.className = 'muted';
      when.textContent = 'by ' + s.created_by + ' at ' + fmtTime(s.created_at) + (s.expires_at ? ', until ' + fmtTime(s.expires_at) : '');
      var withdraw = document.createElement('button');
      withdraw.type = 'button';
      withdraw.className = 'btn btn-small btn-danger withdraw';
      withdraw.textContent = 'Withdraw';
      withdraw.addEventListener('click', function () { withdrawShare(s.id, withdraw); });
      li.appendChild(who);
      li.appendChild(when);
      li.appendChild(withdraw);
      els.list.appendChild(li);
    });
    show(els.empty, active.length === 0);
  }

  async function refresh() {
    var id = sessionId;
    if (!id) return;
    try {
      var data = await api('GET', sharesPath(id));
      if (id !== sessionId) return;
      show(els.panel, true);
      render((data && data.shares) || []);
    } catch (e) {
      if (e.status === 401 || e.status === 403) stop();  // not a call handler: stop asking
    }
  }

  async function create(body, form) {
    var id = sessionId;
    var button = form.querySelector('button');
    els.error.textContent = '';
    button.disabled = true;
    try {
      var share = await api('POST', sharesPath(id), body);
      form.reset();
      if (share.link) {
        els.link.value = share.link;
        els.copied.textContent = '';
        show(els.linkBox, true);
      }
      listSig = '';
      await refresh();
    } catch (e) {
      els.error.textContent = errorText(e);
    } finally {
      button.disabled = false;
    }
  }

  async function withdrawShare(shareId, button) {
    button.disabled = true;
    try {
      await api('DELETE', sharesPath(sessionId) + '/' + encodeURIComponent(shareId));
      listSig = '';
      await refresh();
    } catch (e) {
      els.error.textContent = 'Could not withdraw: ' + errorText(e);
      button.disabled = false;
    }
  }

  async function copyLink() {
    var text = els.link.value;
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      els.link.select();  // no clipboard API (plain http): the selection can be copied by hand
      try { document.execCommand('copy'); } catch (e2) { els.copied.textContent = 'Select and copy the link.'; return; }
    }
    els.copied.textContent = 'Copied.';
  }

  function stop() {
    show(els.panel, false);
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function follow() {
    var id = els.live.getAttribute('data-session-id');
    var ended = els.live.getAttribute('data-state') === 'ended';
    show(els.accountForm, !ended);
    show(els.linkForm, !ended);
    if (id === sessionId) return;
    sessionId = id;
    listSig = '';
    els.error.textContent = '';
    show(els.linkBox, false);
    stop();
    if (!id || !window.SceneLink.console.may('GET /api/sessions/{session_id}/shares')) return;
    refresh();
    pollTimer = setInterval(refresh, POLL_MS);
  }

  function init() {
    els = {
      live: $('live'), panel: $('shares-panel'), accountForm: $('share-account-form'), linkForm: $('share-link-form'),
      username: $('share-username'), label: $('share-label'), minutes: $('share-minutes'), error: $('share-error'),
      linkBox: $('share-link-box'), link: $('share-link'), copy: $('share-copy'), copied: $('share-copied'),
      list: $('shares'), empty: $('shares-empty')
    };
    if (!els.live || !els.panel || !window.MutationObserver) return;
    els.accountForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      create({ kind: 'account', username: els.username.value.trim() }, els.accountForm);
    });
    els.linkForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var body = { kind: 'link' };
      if (els.label.value.trim()) body.label = els.label.value.trim();
      if (els.minutes.value) body.minutes = parseInt(els.minutes.value, 10);
      create(body, els.linkForm);
    });
    els.copy.addEventListener('click', copyLink);
    new MutationObserver(follow).observe(els.live, { attributes: true, attributeFilter: ['data-session-id', 'data-state'] });
    follow();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
