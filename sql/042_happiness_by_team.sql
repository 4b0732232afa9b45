-- Happiness by team: a rating counts for every team its rated user belongs to
-- (team_members.user_id = users.id = happiness_ratings_report.rating_user_id); ratings of users
-- in no team form the row whose team_id is NULL. A user in two teams counts in both, so the
-- rows of this view can add up to more than the number of ratings.

CREATE OR REPLACE VIEW happiness_by_team AS
SELECT
  team_members.team_id AS team_id,
  teams.name AS team_name,
  count(*) AS ratings,
  count(*) FILTER (WHERE happiness_ratings.rating = 'great') AS great,
  count(*) FILTER (WHERE happiness_ratings.rating = 'okay') AS okay,
  count(*) FILTER (WHERE happiness_ratings.rating = 'not_good') AS not_good,
  round(100 * (count(*) FILTER (WHERE happiness_ratings.rating = 'great'))::DOUBLE / count(*), 1) AS great_pct,
  round(100 * (count(*) FILTER (WHERE happiness_ratings.rating = 'okay'))::DOUBLE / count(*), 1) AS okay_pct,
  round(100 * (count(*) FILTER (WHERE happiness_ratings.rating = 'not_good'))::DOUBLE / count(*), 1) AS not_good_pct,
  happiness_score(count(*) FILTER (WHERE happiness_ratings.rating = 'great'),
                  count(*) FILTER (WHERE happiness_ratings.rating = 'not_good'), count(*)) AS happiness_score
FROM happiness_ratings
LEFT JOIN team_members ON happiness_ratings.user_id = team_members.user_id
LEFT JOIN teams ON team_members.team_id = teams.id
GROUP BY team_members.team_id, teams.name
ORDER BY teams.name NULLS LAST, team_members.team_id;
