// Render Adaptive Cards at phone width with Microsoft's renderer and report what does not fit.
// Loaded into a Chromium page after adaptivecards.min.js (window.AdaptiveCards). Defines
// window.pqfPhoneCheck(entries, width, gutter): renders each {name, card} into a phone screen
// `width` pixels wide that leaves the card `gutter` pixels each side (Teams on a 320 px phone
// gives a card about 306 px), one under another, and returns {name: [problems]} (an empty
// list when the card fits).
//
// A problem is one of:
// - "outside": an element reaches past the card's left or right edge;
// - "clipped": an element's content is wider than its box (a button title cut short with an
//   ellipsis, a fact or column squeezed until its text overflows);
// - "broken word": a word split across two lines because its box is narrower than the word;
// - "button": an action of the card that was not rendered, or not wholly visible.

(function () {
  "use strict";
  const AC = window.AdaptiveCards;

  // Close to Teams: its spacing and type sizes (Microsoft's published Teams host config), Segoe
  // UI or else a font with Arial's widths (a little wider than Segoe UI, so a margin of
  // safety), and buttons sized as Teams' Fluent UI buttons: 14 px semibold, 20 px padding each
  // side, at least 96 px wide (styled below).
  const FONT = "'Segoe UI', 'Helvetica Neue', Arial, 'Liberation Sans', sans-serif";
  const SIZES = { small: 12, default: 14, medium: 14, large: 18, extraLarge: 24 };
  const WEIGHTS = { lighter: 200, default: 400, bolder: 600 };
  const TEAMS_HOST_CONFIG = {
    supportsInteractivity: true,
    fontFamily: FONT,
    fontSizes: SIZES,
    fontWeights: WEIGHTS,
    fontTypes: {
      default: { fontFamily: FONT, fontSizes: SIZES, fontWeights: WEIGHTS },
      monospace: { fontFamily: "'Courier New', monospace", fontSizes: SIZES, fontWeights: WEIGHTS },
    },
    spacing: { small: 8, default: 12, medium: 16, large: 20, extraLarge: 24, padding: 16 },
    separator: { lineThickness: 1, lineColor: "#EEEEEE" },
    actions: {
      maxActions: 6,
      spacing: "Default",
      buttonSpacing: 8,
      showCard: { actionMode: "Inline", inlineTopMargin: 16 },
      actionsOrientation: "Horizontal",
      actionAlignment: "Left",
    },
    adaptiveCard: { allowCustomStyle: false },
    factSet: {
      title: { size: "Default", color: "Default", isSubtle: false, weight: "Bolder", wrap: true, maxWidth: 150 },
      value: { size: "Default", color: "Default", isSubtle: false, weight: "Default", wrap: true },
      spacing: 8,
    },
    containerStyles: {
      default: { backgroundColor: "#FFFFFF", foregroundColors: colours() },
      emphasis: { backgroundColor: "#F9F8F7", foregroundColors: colours() },
      attention: { backgroundColor: "#FFC5B2", foregroundColors: colours() },
    },
  };

  function colours() {
    const plain = { default: "#252424", subtle: "#BF252424" };
    return {
      default: plain, dark: plain, light: { default: "#FFFFFF", subtle: "#F3F2F1" },
      accent: { default: "#6264A7", subtle: "#8B8CC7" }, good: { default: "#237B4B", subtle: "#237B4B" },
      warning: { default: "#835C00", subtle: "#835C00" }, attention: { default: "#C4314B", subtle: "#C4314B" },
    };
  }

  const STYLE = `
    body { margin: 0; padding: 8px; background: #EBEBEB; font-family: ${FONT}; }
    .pqf-phone { background: #F5F5F5; margin: 0 0 12px 0; box-sizing: border-box; }
    .pqf-phone > .ac-adaptiveCard { background: #FFFFFF; border-radius: 4px; }
    .ac-pushButton { font-family: ${FONT}; font-size: 14px; font-weight: 600; min-height: 32px;
      min-width: 96px; padding: 0 20px; border: 1px solid #D1D1D1; border-radius: 4px;
      background: #FFFFFF; color: #242424; }
    .ac-input, .ac-textInput, .ac-multichoiceInput { font-family: ${FONT}; font-size: 14px; }
    .ac-textInput, .ac-dateInput, .ac-multichoiceInput { box-sizing: border-box; }
  `;

  // Teams renders a little markdown in the bot's own text: bold and italic are enough here.
  function markdown(text, result) {
    const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    result.outputHtml = "<p>" + escaped
      .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|\s)_(.+?)_(?=\s|$|[.,;:])/g, "$1<em>$2</em>") + "</p>";
    result.didProcess = true;
  }

  function install() {
    AC.AdaptiveCard.onProcessMarkdown = markdown;
    if (document.getElementById("pqf-phone-style")) return;
    const style = document.createElement("style");
    style.id = "pqf-phone-style";
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

  function render(json, width, gutter) {
    const card = new AC.AdaptiveCard();
    card.hostConfig = new AC.HostConfig(TEAMS_HOST_CONFIG);
    card.parse(json, new AC.SerializationContext(AC.Versions.v1_5));
    const box = document.createElement("div");
    box.className = "pqf-phone";
    box.style.width = width + "px";
    box.style.padding = `0 ${gutter}px`;
    box.appendChild(card.render());
    document.body.appendChild(box);
    return box;
  }

  function describe(element) {
    const classes = Array.from(element.classList).filter((c) => c.startsWith("ac-")).join(".");
    const words = (element.innerText || element.textContent || "").trim().replace(/\s+/g, " ");
    return `${element.tagName.toLowerCase()}${classes ? "." + classes : ""} "${words.slice(0, 60)}"`;
  }

  const FORM_CONTROLS = new Set(["INPUT", "TEXTAREA", "SELECT", "OPTION"]);

  function outsideAndClipped(root, problems) {
    const edge = root.getBoundingClientRect();
    for (const element of root.querySelectorAll("*")) {
      const rect = element.getBoundingClientRect();
      if (rect.width === 0 && rect.height === 0) continue;
      if (rect.left < edge.left - 0.5 || rect.right > edge.right + 0.5) {
        problems.push(`outside: ${describe(element)} spans ${Math.round(rect.left - edge.left)}` +
          `–${Math.round(rect.right - edge.left)} px of a ${Math.round(edge.width)} px card`);
        continue;
      }
      // A form control scrolls its own text; anything else wider inside than outside is cut.
      if (FORM_CONTROLS.has(element.tagName) || element.closest("select")) continue;
      const over = overflow(element);
      if (over > 0) {
        problems.push(`clipped: ${describe(element)} is ${over.toFixed(1)} px too narrow ` +
          `(${Math.round(element.getBoundingClientRect().width)} px)`);
      }
    }
  }

  // How far an element's content reaches past its box (0 if it fits). scrollWidth is rounded
  // to whole pixels, so allow 1 px there; a line cut with an ellipsis shows "…" for any
  // fraction of a pixel, so measure such text exactly.
  const measure = document.createRange();
  function overflow(element) {
    if (element.clientWidth === 0) return 0;
    if (element.scrollWidth > element.clientWidth + 1) return element.scrollWidth - element.clientWidth;
    const style = getComputedStyle(element);
    if (style.textOverflow !== "ellipsis" || style.overflowX === "visible") return 0;
    measure.selectNodeContents(element);
    const content = measure.getBoundingClientRect();
    const right = element.getBoundingClientRect().right - parseFloat(style.borderRightWidth) -
      parseFloat(style.paddingRight);
    return content.right - right > 0.01 ? content.right - right : 0;
  }

  // Where a line may end inside a "word" without breaking it: after a hyphen, dash or slash.
  const PIECE = /[^\s\-\u2010-\u2014/]+[\-\u2010-\u2014/]*|[\-\u2010-\u2014/]+/g;

  function brokenWords(root, problems) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest("select, option, textarea")) continue;
      const value = node.nodeValue;
      for (const match of value.matchAll(PIECE)) {
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set();
        for (const rect of range.getClientRects()) {
          if (rect.width > 0) tops.add(Math.round(rect.top));
        }
        if (tops.size > 1) {
          const holder = parent.closest(".ac-textBlock, .ac-richTextBlock, td, label, button") || parent;
          problems.push(`broken word: "${match[0]}" in ${describe(holder)} ` +
            `(${Math.round(holder.getBoundingClientRect().width)} px wide)`);
        }
      }
    }
  }

  function titlesOf(json) {
    const titles = [];
    (function walk(value) {
      if (Array.isArray(value)) {
        value.forEach(walk);
      } else if (value && typeof value === "object") {
        if (typeof value.type === "string" && value.type.startsWith("Action.") && value.title) {
          titles.push(value.title);
        }
        Object.values(value).forEach(walk);
      }
    })(json);
    return titles;
  }

  function buttons(root, json, problems) {
    const edge = root.getBoundingClientRect();
    const rendered = Array.from(root.querySelectorAll("button"));
    const seen = rendered.map((b) => (b.innerText || "").trim());
    for (const title of titlesOf(json)) {
      const at = seen.indexOf(title);
      if (at < 0) {
        problems.push(`button: "${title}" was not rendered`);
        continue;
      }
      seen.splice(at, 1);
    }
    for (const button of rendered) {
      const rect = button.getBoundingClientRect();
      const label = (button.innerText || "").trim();
      if (rect.width === 0 || rect.height === 0) {
        problems.push(`button: "${label}" is not visible`);
      } else if (rect.left < edge.left - 0.5 || rect.right > edge.right + 0.5) {
        problems.push(`button: "${label}" is cut by the card's edge`);
      }
      for (const part of [button, ...button.querySelectorAll("*")]) {
        if (overflow(part) > 0) {
          problems.push(`button: "${label}" shows only part of its title`);
          break;
        }
      }
    }
  }

  // Whether one of the fonts above is installed (else the widths measured mean little).
  window.pqfFontInstalled = function () {
    const probe = document.createElement("canvas").getContext("2d");
    const widthIn = (family) => {
      probe.font = `14px ${family}`;
      return probe.measureText("Feedback call · Involving the worker").width;
    };
    return widthIn(FONT.replace("sans-serif", "monospace")) !== widthIn("monospace");
  };

  window.pqfPhoneCheck = function (entries, width, gutter) {
    install();
    const boxes = entries.map(({ name, card }) => {
      const box = render(card, width, gutter);
      box.dataset.card = name;
      return { name, card, root: box.firstElementChild };
    });
    const results = {};
    for (const { name, card, root } of boxes) {
      const problems = [];
      outsideAndClipped(root, problems);
      brokenWords(root, problems);
      buttons(root, card, problems);
      results[name] = Array.from(new Set(problems));
    }
    return results;
  };
})();
