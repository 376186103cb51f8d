// The check-in page remembers on this device who checked in here (name, e-mail, profession,
// in localStorage, never sent anywhere else), so that the next check-in is one tap. The page
// works without it: this only fills in the fields.
(function () {
  "use strict";
  var KEY = "lhs-rounds.checkin";
  var NAMES = ["full_name", "email", "profession"];
  var form = document.getElementById("checkin-form");
  if (!form) return;
  var store;
  try {
    store = window.localStorage;
  } catch (e) {
    return;
  }
  try {
    var saved = JSON.parse(store.getItem(KEY) || "{}");
    NAMES.forEach(function (name) {
      var field = form.elements[name];
      if (field && !field.value && typeof saved[name] === "string") field.value = saved[name];
    });
  } catch (e) {
    store.removeItem(KEY);
  }
  form.addEventListener("submit", function () {
    var remembered = {};
    NAMES.forEach(function (name) {
      var field = form.elements[name];
      if (field) remembered[name] = field.value;
    });
    try {
      store.setItem(KEY, JSON.stringify(remembered));
    } catch (e) {
      // A full or disabled storage: the check-in is sent all the same.
    }
  });
})();
