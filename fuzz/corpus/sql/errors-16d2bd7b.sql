SELECT temperature FROM readings
WHERE sensor_id = 1 AND