-- Box settings (the panel's Settings page): one row per setting, values as text. A missing row means the
-- setting's default (appliance/store/settings.py names the settings, their defaults and their checks).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    modified REAL NOT NULL
);
