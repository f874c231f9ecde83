/* SceneLink console: the Leaflet maps (the live panel's and the playback's). Without Leaflet
   the page still works: positions are shown as text. */
(function () {
  'use strict';

  var C = window.SceneLink.console;

  C.addTiles = function (map) {
    var config = C.config;
    if (!window.L || !map || !config.tile_url || map._scenelinkTiles) return;
    try {
      map._scenelinkTiles = L.tileLayer(config.tile_url, {
        maxZoom: 19, attribution: safeAttribution(config.tile_attribution)
      }).addTo(map);
      map._scenelinkTiles.on('tileerror', function () { tileNotice(map, true); });
      map._scenelinkTiles.on('tileload', function () { tileNotice(map, false); });
    } catch (e) { /* offline or bad URL: the map still shows overlays */ }
  };

  /* A map whose tiles fail is plain grey: say so over it (the marker and text still work). */
  function tileNotice(map, on) {
    var box = map.getContainer();
    var note = box.querySelector('.map-notice');
    if (!note && !on) return;
    if (!note) {
      note = C.mk('p', 'map-notice', 'Map tiles did not load: the position is still marked and shown as text.');
      note.setAttribute('role', 'status');
      box.appendChild(note);
    }
    C.show(note, on);
  }

  /* Leaflet renders attribution as HTML: reduce the server's text to plain text, then escape it. */
  function safeAttribution(html) {
    var text = String(html || '');
    try {
      if (window.DOMParser) text = new DOMParser().parseFromString(text, 'text/html').body.textContent || '';
    } catch (e) { /* keep raw text; escaped below */ }
    var d = document.createElement('span');
    d.textContent = text.replace(/\s+/g, ' ').trim();
    return d.innerHTML;
  }

  C.makeMap = function (el) {
    if (!window.L) {
      el.textContent = 'Map unavailable (map library failed to load). Positions are still shown as text.';
      el.className += ' map-unavailable';
      return null;
    }
    var map = L.map(el, { zoomControl: true, attributionControl: true }).setView([54.0, -2.5], 6);
    C.addTiles(map);
    return { map: map };
  };
})();
