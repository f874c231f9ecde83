/* SceneLink console: the caller page's language. The send form offers the server's
   catalogues (GET /api/config "languages"); a session shows the language its caller agreed in,
   or the one the handler chose before they opened the link. */
(function () {
  'use strict';

  var C = window.SceneLink.console;

  function nameOf(code) {
    var list = (C.config && C.config.languages) || [];
    for (var i = 0; i < list.length; i++) if (list[i].code === code) return list[i].name;
    return code;
  }

  // Called once the configuration is in: one option per catalogue, after "as the phone is set".
  C.fillLanguages = function () {
    var select = document.getElementById('send-language');
    var list = (C.config && C.config.languages) || [];
    if (!select) return;
    while (select.options.length > 1) select.remove(1);
    list.forEach(function (lang) {
      var option = document.createElement('option');
      option.value = lang.code;
      option.textContent = lang.name;
      option.setAttribute('lang', lang.code);
      select.appendChild(option);
    });
    C.show(select.parentNode, list.length > 1);
  };

  // The request's "language": none leaves it to the caller's phone.
  C.chosenLanguage = function (form) {
    var field = form.elements.language;
    return field && field.value ? field.value : undefined;
  };

  // "Page in Cymraeg", "Page in English (sent in Cymraeg)", "Link in Cymraeg", or "".
  C.languageLine = function (s) {
    if (s && s.consent_language) {
      var sent = s.language && s.language !== s.consent_language ? ' (sent in ' + nameOf(s.language) + ')' : '';
      return 'Page in ' + nameOf(s.consent_language) + sent;
    }
    return s && s.language ? 'Link in ' + nameOf(s.language) : '';
  };
})();
