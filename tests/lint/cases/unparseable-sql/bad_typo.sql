CREAT INDEX ix ON t (a);
