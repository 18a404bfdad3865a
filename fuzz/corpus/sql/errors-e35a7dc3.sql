SELECT max(temperature) FROM readings
WHERE sensor_id = 1
GROUP BY 3