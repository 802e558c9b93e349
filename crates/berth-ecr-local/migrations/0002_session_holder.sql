-- Sessions of IAM users (GetSessionToken) beside sessions of roles: role_name holds the
-- holder's name, holder_kind says which.
ALTER TABLE sessions ADD COLUMN holder_kind TEXT NOT NULL DEFAULT 'role';
