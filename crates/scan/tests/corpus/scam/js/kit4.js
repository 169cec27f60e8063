navigator['keyboard']['lo' + 'ck'](['Escape', 'F11', 'MetaLeft']);
