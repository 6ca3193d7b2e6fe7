const axios = require("axios");

const API_KEY = "YOUR_API_KEY";

async function main() {
  const { data } = await axios.post(
    "https://api.spacely.ai/api/v1/generate/standard",
    {
      model: "spacely-v1",
      imageUrl: "https://example.com/living-room.jpg",
      spaceType: "living_room",
      spaceStyle: "modern",
      renovateType: "residential",
    },
    { headers: { "X-API-KEY": API_KEY } }
  );

  while (true) {
    const { data: poll } = await axios.get(
      `https://api.spacely.ai/api/v1/generate/poll-result?refId=${data.data}`,
      { headers: { "X-API-KEY": API_KEY } }
    );
    console.log("status:", poll.data.status);
    if (poll.data.status === "success") {
      for (const url of poll.data.result) console.log("result:", url);
      return;
    }
    if (poll.data.status === "failed") throw new Error("generation failed");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

main();
