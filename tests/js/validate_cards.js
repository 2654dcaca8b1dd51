// Validate Adaptive Cards with Microsoft's own renderer library, as Adaptive Card 1.5.
// Input (stdin): JSON list of {"name": ..., "card": {...}}.
// Output (stdout): JSON object name -> list of problems (empty when the card is valid).
const AC = require("adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = {};
  for (const { name, card: json } of JSON.parse(input)) {
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext(AC.Versions.v1_5);
    card.parse(json, context);
    const problems = [];
    for (let i = 0; i < context.eventCount; i++) {
      problems.push("parse: " + context.getEventAt(i).message);
    }
    for (const event of card.validateProperties().validationEvents) {
      problems.push("validate: " + event.message);
    }
    results[name] = problems;
  }
  process.stdout.write(JSON.stringify(results));
});
