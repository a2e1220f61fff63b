"""How rows, Contacts and Journey events reach SFMC (see :mod:`target_sfmc.loading.base`)."""
