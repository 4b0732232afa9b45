-- API usage (the log page's "API Usage Monitoring"), from helpscout_api_requests: requests per
-- UTC hour and per UTC day, throttled requests (HTTP 429), failed requests, and the lowest
-- X-RateLimit-Remaining-Minute seen. Token requests (POST …/oauth2/token) do not count against
-- the API rate limit: they are counted apart.

CREATE OR REPLACE VIEW api_usage_hourly AS
SELECT
  date_trunc('hour', make_timestamp(epoch_us("timestamp"))) AS hour,
  count(*) FILTER (WHERE coalesce(request, '') NOT LIKE '%/oauth2/token') AS requests,
  count(*) FILTER (WHERE status = 429) AS rate_limited,
  count(*) FILTER (WHERE error IS NOT NULL AND status IS DISTINCT FROM 429) AS failed,
  min(rate_limit_remaining) AS lowest_remaining,
  count(*) FILTER (WHERE coalesce(request, '') LIKE '%/oauth2/token') AS token_requests,
  round(avg(duration_ms), 1) AS avg_duration_ms
FROM helpscout_api_requests
GROUP BY 1
ORDER BY 1;

CREATE OR REPLACE VIEW api_usage_daily AS
SELECT
  CAST(date_trunc('day', make_timestamp(epoch_us("timestamp"))) AS DATE) AS day,
  count(*) FILTER (WHERE coalesce(request, '') NOT LIKE '%/oauth2/token') AS requests,
  count(*) FILTER (WHERE status = 429) AS rate_limited,
  count(*) FILTER (WHERE error IS NOT NULL AND status IS DISTINCT FROM 429) AS failed,
  min(rate_limit_remaining) AS lowest_remaining,
  count(*) FILTER (WHERE coalesce(request, '') LIKE '%/oauth2/token') AS token_requests,
  round(avg(duration_ms), 1) AS avg_duration_ms,
  count(DISTINCT date_trunc('hour', make_timestamp(epoch_us("timestamp")))) AS active_hours
FROM helpscout_api_requests
GROUP BY 1
ORDER BY 1;
