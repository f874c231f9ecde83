/* SceneLink: a screening appointment's link opened too early. Says when to come back, in the
   phone's own time zone and the page's language (the server sends the time as ISO 8601). */
(function () {
  'use strict';

  var I18n = window.SceneLinkI18n;
  var status = document.getElementById('status');
  var opensAt = new Date(document.body.getAttribute('data-opens-at') || '');
  if (!I18n || !status || isNaN(opensAt.getTime())) return;

  function when() {
    var lang = document.documentElement.getAttribute('lang') || I18n.language();  // en-GB, cy
    var time = opensAt.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
    var date = opensAt.toLocaleDateString(lang, { weekday: 'long', day: 'numeric', month: 'long' });
    return { time: time, date: date };
  }

  function show() { I18n.put(status, 'early.come_back_at', when()); }

  I18n.ready.then(show);
  I18n.onChange(show);
})();
