/* payremindctl: the operators tool entry point. */
int
main(void)
{
	return 0;
}
