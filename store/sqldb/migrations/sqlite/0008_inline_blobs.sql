-- Small messages are kept in their blobs row, in the same format as a
-- message file (header, zstd, and age for secure users), and committed
-- with the rows that refer to them: no file, inode or sync of their own.
-- part is '' for them; data is NULL for blobs kept in files.
ALTER TABLE blobs ADD COLUMN data BLOB;
