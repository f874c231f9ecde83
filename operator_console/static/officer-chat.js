/* SceneLink officer page: the chat between the caller and the call handler, read-only, and
   whether the caller is in silent mode. officer.js passes on each message of the link's
   WebSocket as a 'scenelink:officer-message' event: the chat so far after the trail, then each
   new message or change of one. Plain ES2017, CSP-safe. */
(function () {
  'use strict';

  var messages = {};
  var order = [];

  function $(id) { return document.getElementById(id); }

  function fmtTime(iso) {
    var t = Date.parse(iso);
    return isFinite(t) ? new Date(t).toLocaleTimeString('en-GB') : '';
  }

  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function render() {
    var list = $('officer-chat');
    if (!list) return;
    while (list.firstChild) list.removeChild(list.firstChild);
    order.forEach(function (id) {
      var m = messages[id];
      var li = document.createElement('li');
      li.className = 'chat-msg chat-' + m.sender;
      li.setAttribute('data-message-id', m.message_id);
      var who = m.sender === 'caller' ? 'Caller' : (m.by || 'Call handler');
      li.appendChild(span('chat-who', who + ' · ' + fmtTime(m.at)));
      li.appendChild(span('chat-text', m.text));
      if (m.translation && m.translation.text) {
        li.appendChild(span('chat-translation', 'Translation (' + m.translation.language + '): ' + m.translation.text));
      }
      list.appendChild(li);
    });
    var empty = $('officer-chat-empty');
    if (empty) { if (order.length) empty.setAttribute('hidden', ''); else empty.removeAttribute('hidden'); }
  }

  document.addEventListener('scenelink:officer-message', function (ev) {
    var msg = ev.detail || {};
    if (msg.type === 'chat' && msg.message && typeof msg.message.message_id === 'string') {
      window.SceneLink.keepMessage(messages, order, msg.message);
      render();
    } else if (msg.type === 'state' && msg.session) {
      var badge = $('officer-silent');
      if (badge) { if (msg.session.silent) badge.removeAttribute('hidden'); else badge.setAttribute('hidden', ''); }
    }
  });
})();
