package objstore

// SetHookBeforeRename lets tests stop a Put between writing and renaming, as a crash would.
func SetHookBeforeRename(f *FS, h func(key string) error) { f.hookBeforeRename = h }
