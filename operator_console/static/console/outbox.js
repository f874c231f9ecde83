/* SceneLink console: the development SMS outbox, the messages as the caller would receive them,
   links clickable. Absent with a real SMS provider (404) and for roles that send no links (403). */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var ApiError = window.SceneLink.ApiError;
  var URL_RE = /https?:\/\/[^\s<>"']+/g;
  var outboxEnabled = true;
  var outboxSig = '';

  C.pollOutbox = async function () {
    if (!outboxEnabled) return;
    try {
      var ob = await C.api('GET', '/api/sms/outbox');
      C.show(C.els.outboxPanel, true);
      renderOutbox((ob && ob.messages) || []);
    } catch (e) {
      // 404: a real SMS provider; 403: this role sends no links. Either way, stop asking.
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) { outboxEnabled = false; C.show(C.els.outboxPanel, false); }
    }
  };

  C.resetOutbox = function () {
    C.clear(C.els.outbox);
    outboxSig = '';
    outboxEnabled = true;
  };

  function linkify(parent, text) {
    text = String(text || '');
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      var url = m[0].replace(/[.,;:!?)]+$/, '');
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = C.mk('a', 'sms-link', url);
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      parent.appendChild(a);
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function renderOutbox(messages) {
    var els = C.els;
    var sig = JSON.stringify(messages);
    if (sig === outboxSig) return;
    outboxSig = sig;
    C.clear(els.outbox);
    var list = messages.slice().sort(function (a, b) { return (C.parseTime(b.sent_at) || 0) - (C.parseTime(a.sent_at) || 0); });
    list.forEach(function (msg) {
      var li = C.mk('li', 'outbox-item');
      if (msg.session_id !== undefined && msg.session_id !== null) li.setAttribute('data-session-id', String(msg.session_id));
      var head = C.mk('div', 'outbox-head');
      head.appendChild(C.mk('span', 'to', 'To ' + (msg.to_masked || '?')));
      head.appendChild(C.mk('span', 'muted', C.fmtDate(msg.sent_at)));
      var body = C.mk('p', 'outbox-text');
      linkify(body, msg.text);
      li.appendChild(head);
      li.appendChild(body);
      els.outbox.appendChild(li);
    });
    C.show(els.outboxEmpty, list.length === 0);
  }
})();
