/* SceneLink console: chat with the watched session's caller, and silent mode. The history
   comes from GET /api/sessions/{id}/chat; new messages and their delivery, read state and
   translation arrive on the live WebSocket (live.js passes each message on as a
   'scenelink:live-message' event). A call handler writes (or picks a canned phrase), switches
   silent mode and asks for the microphone; anyone else watching reads. The caller's messages
   are marked delivered when this page has them and read when shown while it is visible.
   Follows live.js through #live's data-session-id, as files.js does. Plain ES2017, CSP-safe. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var errorText = window.SceneLink.errorText;
  var $ = function (id) { return document.getElementById(id); };
  var els = {};
  var sessionId = null;
  var messages = {};
  var order = [];
  var receipted = {};
  var silent = false;

  function show(el, on) { if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', ''); }
  function path(id, tail) { return '/api/sessions/' + encodeURIComponent(id) + tail; }
  function may(route) { return C.may(route); }

  function fmtTime(iso) {
    var t = Date.parse(iso);
    return isFinite(t) ? new Date(t).toLocaleTimeString('en-GB') : '';
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function build(slot) {
    var box = el('div', 'chat');
    box.id = 'chat-panel';
    var head = el('div', 'chat-head');
    head.appendChild(el('h3', '', 'Chat with the caller'));
    els.silentBadge = el('span', 'silent-badge', 'SILENT MODE: the caller cannot talk');
    els.silentBadge.id = 'silent-badge';
    els.silentBadge.setAttribute('role', 'status');
    head.appendChild(els.silentBadge);
    box.appendChild(head);
    els.controls = el('div', 'chat-controls');
    els.silentButton = el('button', 'btn btn-small', 'Silent mode on');
    els.silentButton.type = 'button';
    els.silentButton.id = 'silent-toggle';
    els.micButton = el('button', 'btn btn-small', 'Ask to use the microphone');
    els.micButton.type = 'button';
    els.micButton.id = 'ask-microphone';
    els.controls.appendChild(els.silentButton);
    els.controls.appendChild(els.micButton);
    box.appendChild(els.controls);
    els.log = el('ol', 'chat-log');
    els.log.id = 'chat-log';
    els.log.setAttribute('aria-live', 'polite');
    box.appendChild(els.log);
    els.phrases = el('div', 'chat-phrases');
    els.phrases.id = 'chat-phrases';
    box.appendChild(els.phrases);
    els.form = el('form', 'chat-form');
    els.form.id = 'chat-form';
    els.form.noValidate = true;
    var label = el('label', '', 'Message to the caller');
    label.htmlFor = 'chat-text';
    els.text = el('textarea');
    els.text.id = 'chat-text';
    els.text.rows = 2;
    els.send = el('button', 'btn btn-small', 'Send');
    els.send.type = 'submit';
    els.form.appendChild(label);
    els.form.appendChild(els.text);
    els.form.appendChild(els.send);
    box.appendChild(els.form);
    els.error = el('p', 'field-error');
    els.error.id = 'chat-error';
    els.error.setAttribute('role', 'alert');
    box.appendChild(els.error);
    slot.appendChild(box);
  }

  function stateWord(m) {
    if (m.sender !== 'handler') return '';
    return m.read_at ? 'Read' : (m.delivered_at ? 'Delivered' : 'Sent');
  }

  function render() {
    while (els.log.firstChild) els.log.removeChild(els.log.firstChild);
    order.forEach(function (id) {
      var m = messages[id];
      var li = el('li', 'chat-msg chat-' + m.sender);
      li.setAttribute('data-message-id', m.message_id);
      var who = m.sender === 'caller' ? 'Caller' : (m.by || 'Call handler');
      li.appendChild(el('span', 'chat-who', who + ' · ' + fmtTime(m.at)));
      li.appendChild(el('span', 'chat-text', m.text));
      if (m.translation && m.translation.text) {
        li.appendChild(el('span', 'chat-translation',
          'Translation (' + m.translation.language + '): ' + m.translation.text));
      }
      var word = stateWord(m);
      if (word) {
        var st = el('span', 'chat-state', word);
        st.setAttribute('data-state', word.toLowerCase());
        li.appendChild(st);
      }
      els.log.appendChild(li);
    });
    if (els.log.lastChild && els.log.lastChild.scrollIntoView) {
      try { els.log.lastChild.scrollIntoView({ block: 'nearest' }); } catch (e) {}
    }
    acknowledge();
  }

  function take(m) { window.SceneLink.keepMessage(messages, order, m); }

  /* The caller's messages: delivered once here, read once shown on a visible console. */
  function acknowledge() {
    if (!sessionId || !may('POST /api/sessions/{session_id}/chat/receipts')) return;
    var want = document.visibilityState === 'visible' ? 'read' : 'delivered';
    var ids = window.SceneLink.receiptsDue(messages, order, receipted, 'caller', want);
    if (!ids.length) return;
    ids.forEach(function (id) { receipted[id] = want; });
    C.api('POST', path(sessionId, '/chat/receipts'), { message_ids: ids, receipt: want })
      .catch(function () { ids.forEach(function (id) { if (receipted[id] === want) delete receipted[id]; }); });
  }

  function showSilent(session) {
    silent = !!(session && session.silent);
    show(els.silentBadge, silent);
    els.silentButton.textContent = silent ? 'Silent mode off' : 'Silent mode on';
    var ended = !session || session.state === 'ended';
    var write = may('POST /api/sessions/{session_id}/chat') && !ended;
    show(els.controls, may('POST /api/sessions/{session_id}/silent') && !ended);
    show(els.micButton, silent);
    show(els.form, write);
    show(els.phrases, write);
  }

  function phrases(list) {
    while (els.phrases.firstChild) els.phrases.removeChild(els.phrases.firstChild);
    (list || []).forEach(function (text) {
      var b = el('button', 'btn btn-small btn-ghost chat-phrase', text);
      b.type = 'button';
      b.addEventListener('click', function () { send(text); });
      els.phrases.appendChild(b);
    });
  }

  async function load(id) {
    try {
      var answer = await C.api('GET', path(id, '/chat'));
      if (id !== sessionId) return;
      (answer.messages || []).forEach(take);
      phrases(answer.phrases);
      if (answer.max_chars) els.text.maxLength = answer.max_chars;
      render();
    } catch (e) {
      if (id === sessionId) els.error.textContent = errorText(e);
    }
  }

  async function send(text) {
    var id = sessionId;
    if (!id || !text.trim()) return;
    els.error.textContent = '';
    els.send.disabled = true;
    try {
      var m = await C.api('POST', path(id, '/chat'), { text: text });
      if (id !== sessionId) return;
      if (text === els.text.value) els.text.value = '';
      take(m);
      render();
    } catch (e) {
      els.error.textContent = errorText(e) + (e.data && e.data.detail ? ': ' + e.data.detail : '');
    } finally {
      els.send.disabled = false;
    }
  }

  async function post(tail, body, done) {
    var id = sessionId;
    els.error.textContent = '';
    try {
      var session = await C.api('POST', path(id, tail), body);
      if (id !== sessionId) return;
      showSilent(session);
      if (done) els.error.textContent = done;
    } catch (e) {
      els.error.textContent = errorText(e);
    }
  }

  function onLiveMessage(ev) {
    var d = ev.detail || {};
    if (!d.msg || String(d.id) !== sessionId) return;
    if (d.msg.type === 'chat') { take(d.msg.message); render(); }
    else if (d.msg.type === 'state' && d.msg.session) showSilent(d.msg.session);
  }

  function follow() {
    var id = els.live.getAttribute('data-session-id');
    if (id === sessionId) { showSilent(C.sessions[id]); return; }
    sessionId = id;
    messages = {};
    order = [];
    receipted = {};
    els.error.textContent = '';
    render();
    show(els.panel, !!id);
    if (!id) return;
    showSilent(C.sessions[id]);
    load(id);
  }

  function init() {
    var slot = $('live-chat-slot');
    els.live = $('live');
    if (!slot || !els.live || !window.MutationObserver) return;
    build(slot);
    els.panel = $('chat-panel');
    els.form.addEventListener('submit', function (ev) { ev.preventDefault(); send(els.text.value); });
    els.silentButton.addEventListener('click', function () { post('/silent', { on: !silent }); });
    els.micButton.addEventListener('click', function () {
      post('/microphone', undefined, 'Asked the caller to turn the microphone on.');
    });
    document.addEventListener('scenelink:live-message', onLiveMessage);
    document.addEventListener('visibilitychange', acknowledge);
    new MutationObserver(follow).observe(els.live, { attributes: true, attributeFilter: ['data-session-id', 'data-state'] });
    follow();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
