/* pam_nhslogin: PAM entry points (to be written). */
