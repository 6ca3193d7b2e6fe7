curl -X POST "https://api.spacely.ai/api/v1/generate/standard" \
  -H "X-API-KEY: YOUR_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "spacely-v1",
    "imageUrl": "https://example.com/living-room.jpg",
    "spaceType": "living_room",
    "spaceStyle": "modern",
    "renovateType": "residential"
  }'
