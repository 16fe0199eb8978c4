-- The passing eval run that vouched for an eval-gated label move.
ALTER TABLE prompt_label_moves ADD COLUMN eval_run BLOB;
