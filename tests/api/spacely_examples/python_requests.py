import time

import requests

API_KEY = "YOUR_API_KEY"
headers = {"X-API-KEY": API_KEY, "Content-Type": "application/json"}

payload = {
    "model": "spacely-v1",
    "imageUrl": "https://example.com/living-room.jpg",
    "spaceType": "living_room",
    "spaceStyle": "modern",
    "renovateType": "residential",
}
response = requests.post("https://api.spacely.ai/api/v1/generate/standard",
                         json=payload, headers=headers)
ref_id = response.json()["data"]
print("refId:", ref_id)

while True:
    poll = requests.get("https://api.spacely.ai/api/v1/generate/poll-result",
                        params={"refId": ref_id}, headers=headers)
    data = poll.json()["data"]
    print("status:", data["status"])
    if data["status"] == "success":
        for url in data["result"]:
            print("result:", url)
        break
    if data["status"] == "failed":
        raise SystemExit("generation failed")
    time.sleep(1)
