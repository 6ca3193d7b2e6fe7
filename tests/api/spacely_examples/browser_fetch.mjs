const API_KEY = "YOUR_API_KEY";

const res = await fetch("https://api.spacely.ai/api/v1/generate/standard", {
  method: "POST",
  headers: {
    "X-API-KEY": API_KEY,
    "Content-Type": "application/json",
  },
  body: JSON.stringify({
    model: "spacely-v1",
    imageUrl: "https://example.com/living-room.jpg",
    spaceType: "living_room",
    spaceStyle: "modern",
    renovateType: "residential",
  }),
});
const { data: refId } = await res.json();

let result = [];
while (true) {
  await new Promise((r) => setTimeout(r, 1000));
  const poll = await fetch(
    `https://api.spacely.ai/api/v1/generate/poll-result?refId=${refId}`,
    { headers: { "X-API-KEY": API_KEY } }
  );
  const pollData = await poll.json();
  console.log("status:", pollData.data.status);
  if (pollData.data.status === "success") {
    result = pollData.data.result;
    break;
  }
  if (pollData.data.status === "failed") throw new Error("generation failed");
}
for (const url of result) console.log("result:", url);
