//! Every key format of the table, in one file.
