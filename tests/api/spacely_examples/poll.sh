curl -X GET "https://api.spacely.ai/api/v1/generate/poll-result?refId=YOUR_REF_ID" \
  -H "X-API-KEY: YOUR_API_KEY"
