/* payremindd: the daemon entry point. */
int
main(void)
{
	return 0;
}
