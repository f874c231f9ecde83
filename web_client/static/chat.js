/* SceneLink caller page: text chat with the call handler, and silent mode. Plain ES2017, no
   build step, no inline code (CSP script-src 'self'); loaded after caller.js, whose data
   channel it uses when open (window.SceneLinkCaller) and whose server messages it hears
   ('scenelink:server-message').

   Without an open channel (before agreeing, a location-only page without WebRTC, a dropped
   connection) messages go by POST and the page long-polls GET /api/caller/chat, which answers
   at once when anything changed since the version it was given, else after up to 20 s: one
   request waiting at a time, and nothing new to learn for a phone that is not on this page.
   When the channel opens the page asks for everything again (chat_sync), so nothing sent in
   between is missed.

   Delivery and read state: a handler's message is "delivered" once this page has it and
   "read" once shown while the page is visible. Silent mode (the caller's "I can't talk", or
   the handler's switch): no sound, the screen dimmed, the preview hidden, the chat first, and
   the microphone's track disabled unless the caller accepts the handler's request. */
(function () {
  'use strict';

  var CHAT = '/api/caller/chat';
  var RECEIPTS = '/api/caller/chat/receipts';
  var SILENT = '/api/caller/silent';
  var RETRY_MS = [1000, 2000, 5000, 10000];
  var MIC_MS = 1000;          // the microphone's tracks looked at (a new stream after a reconnect)

  var I18n = window.SceneLinkI18n;
  var Caller = window.SceneLinkCaller;
  var els = {};
  var api = null;
  var ended = false;
  var messages = {};          // message_id -> the message as last told
  var order = [];
  var version = '';
  var polling = false;
  var failures = 0;
  var silent = false;
  var micAllowed = false;
  var micRequest = null;      // the request last answered (or shown)
  var receipted = {};         // message_id -> 'delivered' | 'read' already sent

  function $(id) { return document.getElementById(id); }
  function t(key, params) { return I18n ? I18n.t(key, params) : key; }
  function show(el, on) { if (el) { if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', ''); } }

  function getToken() {
    var parts = (location.pathname || '').split('/').filter(function (p) { return p.length > 0; });
    var last = parts.length ? parts[parts.length - 1] : '';
    try { return decodeURIComponent(last); } catch (e) { return last; }
  }

  function language() { return I18n ? I18n.language() : (document.documentElement.lang || 'en'); }

  function channelOpen() { return !!(Caller && Caller.channelOpen()); }

  /* ---------------- what is shown ---------------- */

  function stateWord(m) {
    if (m.sender !== 'caller') return '';
    if (m.read_at) return t('chat.read');
    if (m.delivered_at) return t('chat.delivered');
    return t('chat.sent');
  }

  function render() {
    var list = els.log;
    while (list.firstChild) list.removeChild(list.firstChild);
    order.forEach(function (id) {
      var m = messages[id];
      var li = document.createElement('li');
      li.className = 'chat-msg chat-' + m.sender;
      li.setAttribute('data-message-id', m.message_id);
      var who = document.createElement('span');
      who.className = 'chat-who';
      who.textContent = m.sender === 'caller' ? t('chat.you') : t('chat.handler');
      var text = document.createElement('span');
      text.className = 'chat-text';
      text.textContent = m.text;
      li.appendChild(who);
      li.appendChild(text);
      if (m.translation && m.translation.text) {
        var tr = document.createElement('span');
        tr.className = 'chat-translation';
        tr.textContent = t('chat.translation', { text: m.translation.text });
        li.appendChild(tr);
      }
      var word = stateWord(m);
      if (word) {
        var st = document.createElement('span');
        st.className = 'chat-state';
        st.setAttribute('data-state', m.read_at ? 'read' : (m.delivered_at ? 'delivered' : 'sent'));
        st.textContent = word;
        li.appendChild(st);
      }
      list.appendChild(li);
    });
    show(els.empty, order.length === 0);
    if (list.lastChild && list.lastChild.scrollIntoView && document.visibilityState === 'visible') {
      try { list.lastChild.scrollIntoView({ block: 'nearest' }); } catch (e) {}
    }
    acknowledge();
  }

  function take(m) { window.SceneLink.keepMessage(messages, order, m); }

  /* The handler's messages this page has (delivered), and has shown while visible (read). */
  function acknowledge() {
    var visible = document.visibilityState === 'visible' && !els.chat.hasAttribute('hidden');
    var want = visible ? 'read' : 'delivered';
    var ids = window.SceneLink.receiptsDue(messages, order, receipted, 'handler', want);
    if (!ids.length) return;
    ids.forEach(function (id) { receipted[id] = want; });
    var receipt = { type: 'chat_receipt', message_ids: ids, receipt: want };
    if (Caller && Caller.send(receipt)) return;
    if (!api) return;
    api('POST', RECEIPTS, { message_ids: ids, receipt: want }).catch(function () {
      ids.forEach(function (id) { if (receipted[id] === want) delete receipted[id]; });
    });
  }

  function applyState(state) {
    if (!state || !Array.isArray(state.messages)) return;
    state.messages.forEach(take);
    if (typeof state.version === 'string') version = state.version;
    setSilent(!!state.silent, state.microphone_request || null);
    render();
  }

  /* ---------------- silent mode ---------------- */

  function setSilent(on, request) {
    if (on !== silent) {
      silent = on;
      if (!on) micAllowed = false;
      document.body.classList.toggle('silent', on);
      show(els.silentOn, !on);
      show(els.silentOff, on);
      show(els.silentNote, on);
      if (on) {
        // The chat first, the preview hidden (caller.css), nothing that makes a sound.
        var main = els.chat.parentNode;
        if (main && main.firstChild !== els.chat) main.insertBefore(els.chat, main.firstChild);
        if (els.text && els.text.focus) { try { els.text.focus(); } catch (e) {} }
      }
      muteMicrophone();
    }
    if (on && request && request !== micRequest && !micAllowed) {
      micRequest = request;
      show(els.micAsk, true);
    }
    if (!on) show(els.micAsk, false);
  }

  function muteMicrophone() {
    if (!Caller) return;
    var enabled = !silent || micAllowed;
    Caller.audioTracks().forEach(function (track) {
      if (track.enabled !== enabled) track.enabled = enabled;
    });
  }

  function chooseSilent(on) {
    setSilent(on, null);
    if (Caller && Caller.send({ type: 'silent', on: on })) return;
    if (api) api('POST', SILENT, { on: on }).catch(function () {});
  }

  /* ---------------- sending ---------------- */

  function error(text) {
    els.error.textContent = text || '';
    show(els.error, !!text);
  }

  function refusal(e) {
    var limit = e && e.data && e.data.limit;
    if (limit === 'chat_max_chars') return t('chat.too_long', { max: els.text.getAttribute('maxlength') || '' });
    if (limit === 'chat_rate') return t('chat.too_fast');
    if (limit === 'control_characters') return t('chat.bad_characters');
    return t('chat.not_sent');
  }

  function send(ev) {
    if (ev) ev.preventDefault();
    var text = els.text.value;
    if (!text.trim() || ended) return;
    error('');
    var body = { type: 'chat', text: text, language: language() };
    if (Caller && Caller.send(body)) { els.text.value = ''; return; }
    if (!api) return;
    els.send.disabled = true;
    api('POST', CHAT, { text: text, language: language() }).then(function (m) {
      els.text.value = '';
      take(m);
      render();
    }, function (e) {
      error(refusal(e));
    }).then(function () { els.send.disabled = false; });
  }

  function onServerMessage(ev) {
    var msg = ev.detail;
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'chat') { take(msg.message); render(); }
    else if (msg.type === 'chat_state') applyState(msg);
    else if (msg.type === 'silent') setSilent(!!msg.on, msg.microphone_request || null);
    else if (msg.type === 'chat_error') error(refusal({ data: msg }));
    else if (msg.type === 'ended') ended = true;
  }

  /* ---------------- the long poll, while there is no open channel ---------------- */

  function poll() {
    if (polling || ended || !api) return;
    if (channelOpen()) { setTimeout(poll, 2000); return; }
    polling = true;
    var path = CHAT + '?language=' + encodeURIComponent(language()) +
      (version ? '&version=' + encodeURIComponent(version) : '');
    api('GET', path).then(function (state) {
      failures = 0;
      applyState(state);
    }, function (e) {
      if (e && (e.status === 401 || e.status === 404 || e.status === 410)) { ended = true; return; }
      failures += 1;
    }).then(function () {
      polling = false;
      if (ended) return;
      var wait = failures ? RETRY_MS[Math.min(failures, RETRY_MS.length) - 1] : 0;
      setTimeout(poll, wait);
    });
  }

  function init() {
    els = {
      chat: $('chat'), log: $('chat-log'), empty: $('chat-empty'), form: $('chat-form'),
      text: $('chat-text'), send: $('chat-send'), error: $('chat-error'),
      silentOn: $('silent-on'), silentOff: $('silent-off'), silentNote: $('silent-note'),
      micAsk: $('mic-ask'), micYes: $('mic-yes'), micNo: $('mic-no')
    };
    if (!els.chat || !window.SceneLink || !window.SceneLink.client || !window.Promise) return;
    api = window.SceneLink.client({ token: getToken(), csrf: false, authLostOn: [] });
    show(els.chat, true);
    els.form.addEventListener('submit', send);
    els.silentOn.addEventListener('click', function () { chooseSilent(true); });
    els.silentOff.addEventListener('click', function () { chooseSilent(false); });
    els.micYes.addEventListener('click', function () {
      micAllowed = true;
      show(els.micAsk, false);
      muteMicrophone();
    });
    els.micNo.addEventListener('click', function () { show(els.micAsk, false); });
    document.addEventListener('scenelink:server-message', onServerMessage);
    document.addEventListener('scenelink:channel-open', function () {
      Caller.send({ type: 'chat_sync', language: language() });
    });
    document.addEventListener('visibilitychange', acknowledge);
    if (I18n && I18n.onChange) I18n.onChange(render);
    setInterval(muteMicrophone, MIC_MS);
    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
